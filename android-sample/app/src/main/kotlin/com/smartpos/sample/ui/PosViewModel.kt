package com.smartpos.sample.ui

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.util.UUID

/** Which screen is shown. */
enum class Screen { LOGIN, CHANGE_PASSWORD, AMOUNT, PRESENT_CARD, PROCESSING, RESULT, TRANSACTIONS, REFUND, SETTLEMENT, PENDING, ERROR }

/** Everything the screens show; one immutable value per change. */
data class PosUiState(
    val screen: Screen = Screen.LOGIN,
    val operator: String? = null,
    val busy: Boolean = false,
    val status: String? = null,
    val lastResult: TxnView? = null,
    val transactions: List<TxnView> = emptyList(),
    val refundQuote: RefundQuote? = null,
    val settlement: SettlementView? = null,
    val pending: List<PendingView> = emptyList(),
    val recovery: RecoveryView? = null,
    val error: String? = null,
    val diagnosis: DiagnosisView? = null,
    /** The printer's answer to the last print or reprint. */
    val printStatus: PrintOutcome? = null,
    /** Whether the failed command can be retried with the same idempotency key ([PosViewModel.retry]). */
    val canRetry: Boolean = false,
)

/**
 * The cashier flow. Long calls run in [viewModelScope] on [io] (the SDK's suspend functions do
 * not block, but the bridge's callbacks may); the SDK's events update [state] as they come.
 *
 * Idempotency: every money command (sale, refund, void) the cashier confirms is one checkout
 * with its own key, made when it starts ([sale], [refund], [void]). Only an explicit [retry] of
 * that checkout reuses the key, so the SDK returns the recorded outcome instead of moving money
 * twice; confirming an amount again is a new checkout with a new key (two customers paying the
 * same amount are two sales). The key is dropped on a definite outcome (approved, declined,
 * reversed), on [newSale] and when another money command starts; a timeout or an unknown outcome
 * keeps it for [retry]. A result the SDK replayed from the journal is marked [TxnView.replayed].
 *
 * @param newOrderId makes a new idempotency key.
 */
class PosViewModel(
    private val gateway: PaymentGateway,
    private val io: CoroutineDispatcher = Dispatchers.IO,
    private val newOrderId: () -> String = { UUID.randomUUID().toString() },
) : ViewModel() {
    private val mutableState = MutableStateFlow(PosUiState())

    /** The UI state. */
    val state: StateFlow<PosUiState> = mutableState.asStateFlow()

    /** One confirmed money command: [intent] for logs and tests, [key] its idempotency key. */
    private class Checkout(val intent: String, val key: String, private val start: (Checkout) -> Job) {
        fun run(): Job = start(this)
    }

    /** The checkout [retry] repeats; null after a definite outcome or [newSale]. */
    @Volatile
    private var checkout: Checkout? = null

    init {
        viewModelScope.launch {
            gateway.events.collect { e -> mutableState.update { onEvent(it, e) } }
        }
        // Opens the SDK in the background now (not on the main thread): a terminal that cannot
        // open shows the error screen with its diagnosis instead of crashing the app.
        launchCall { gateway.ready(); { it } }
    }

    // Progress events only matter while a command runs; a late one must not hide the result.
    private fun onEvent(s: PosUiState, e: PosEvent): PosUiState = if (!s.busy) s else when (e) {
        is PosEvent.PresentCard -> s.copy(screen = Screen.PRESENT_CARD, status = "present_card")
        is PosEvent.CardRead -> s.copy(screen = Screen.PROCESSING, status = "card_read ${e.panMasked ?: ""}".trim())
        is PosEvent.Processing -> s.copy(screen = Screen.PROCESSING, status = "processing ${e.what}")
        is PosEvent.ReversalSent -> s.copy(status = "reversal ${e.reference}")
        is PosEvent.Other -> s
    }

    /** Starts a new checkout for [intent] with a fresh key; it replaces any earlier one. */
    private fun newCheckout(intent: String, start: (Checkout) -> Job): Job {
        val c = Checkout(intent, newOrderId(), start)
        checkout = c
        return c.run()
    }

    /** Closes [c] when [result] is definite; keeps it for [retry] while the money is in doubt. */
    private fun settled(c: Checkout, result: TxnView) {
        if (result.isDefinite() && checkout === c) checkout = null
    }

    /** The open checkout [retry] would repeat, as intent -> idempotency key (empty when none). */
    fun openIntents(): Map<String, String> = checkout?.let { mapOf(it.intent to it.key) } ?: emptyMap()

    /** Operator login (the SDK checks the password and signs the terminal in). */
    fun login(operator: String, password: String): Job = launchCall {
        when (gateway.login(operator, password)) {
            LoginOutcome.LOGGED_IN -> ({ it.copy(screen = Screen.AMOUNT, operator = operator) })
            LoginOutcome.MUST_CHANGE_PASSWORD -> ({ it.copy(screen = Screen.CHANGE_PASSWORD, operator = operator) })
        }
    }

    /** The forced first password change (or a later one) of the operator on screen. */
    fun changePassword(oldPassword: String, newPassword: String): Job = launchCall {
        val op = state.value.operator ?: throw GatewayException("log in first", null)
        gateway.changePassword(op, oldPassword, newPassword)
        ({ it.copy(screen = Screen.AMOUNT) })
    }

    /**
     * Cancels the "present card" wait of the running sale: it ends with "no card" (nothing sent)
     * and can be retried. Does nothing once the card was read.
     */
    fun cancelCardWait() {
        if (state.value.screen == Screen.PRESENT_CARD) gateway.cancelCardWait()
    }

    /** Starts a contactless sale of [amount] minor units (the cashier confirmed the amount): a new checkout. */
    fun sale(amount: Long): Job = newCheckout("sale:$amount") { c ->
        mutableState.update { it.copy(screen = Screen.PRESENT_CARD, printStatus = null) }
        launchCall(retryable = true) {
            val r = gateway.sale(amount, c.key)
            settled(c, r)
            ({ it.copy(screen = Screen.RESULT, lastResult = r, diagnosis = r.diagnosis) })
        }
    }

    /** Loads the transaction list. */
    fun loadTransactions(limit: Int = 50): Job = launchCall {
        val list = gateway.transactions(limit)
        ({ it.copy(screen = Screen.TRANSACTIONS, transactions = list) })
    }

    /** Looks up an original for a refund. */
    fun quoteRefund(reference: String): Job = launchCall {
        val q = gateway.refundQuote(reference)
        ({ it.copy(screen = Screen.REFUND, refundQuote = q) })
    }

    /**
     * Refunds [amount] of the quoted original; [approval] when the quote says a supervisor must
     * approve (the SDK's policy decides and checks the password).
     */
    fun refund(amount: Long, approval: SupervisorApproval?): Job {
        val reference = state.value.refundQuote?.original?.reference
        return newCheckout("refund:$reference:$amount") { c ->
            launchCall(retryable = true) {
                if (reference == null) throw GatewayException("look up the original first", null)
                val r = gateway.refund(reference, amount, approval, c.key)
                settled(c, r)
                ({ it.copy(screen = Screen.RESULT, lastResult = r, refundQuote = null, diagnosis = r.diagnosis, printStatus = null) })
            }
        }
    }

    /** Voids [reference]. */
    fun void(reference: String): Job = newCheckout("void:$reference") { c ->
        launchCall(retryable = true) {
            val r = gateway.void(reference, c.key)
            settled(c, r)
            ({ it.copy(screen = Screen.RESULT, lastResult = r, diagnosis = r.diagnosis, printStatus = null) })
        }
    }

    /**
     * Runs the open checkout again with its idempotency key (after an error, e.g. no answer in
     * time): the SDK returns the recorded outcome if the first attempt got one. Null when there
     * is nothing to retry.
     */
    fun retry(): Job? = checkout?.run()

    /** Prints the receipt of the transaction on screen. */
    fun printReceipt(customerCopy: Boolean = true): Job = launchCall {
        val ref = state.value.lastResult?.reference ?: throw GatewayException("no transaction to print", null)
        val p = gateway.print(ref, customerCopy)
        ({ it.copy(printStatus = p) })
    }

    /** Reprints the most recent receipt. */
    fun reprintLast(customerCopy: Boolean = true): Job = launchCall {
        val p = gateway.reprintLast(customerCopy)
        ({ it.copy(printStatus = p) })
    }

    /** Settles the batch. */
    fun settle(): Job = launchCall {
        val s = gateway.settle()
        ({ it.copy(screen = Screen.SETTLEMENT, settlement = s) })
    }

    /** Shows the pending recovery items. */
    fun loadPending(): Job = launchCall {
        val p = gateway.pending()
        ({ it.copy(screen = Screen.PENDING, pending = p) })
    }

    /** Sends the pending items, then shows what is left. */
    fun recover(): Job = launchCall {
        val r = gateway.recover()
        val p = gateway.pending()
        ({ it.copy(screen = Screen.PENDING, recovery = r, pending = p) })
    }

    /**
     * Back to amount entry for the next customer: the open checkout and its key are dropped, so
     * nothing recorded for an earlier customer can be replayed as this one's payment. (After an
     * unknown outcome the cashier should use Retry first; the diagnosis says so.)
     */
    fun newSale() {
        checkout = null
        mutableState.update { it.copy(screen = Screen.AMOUNT, lastResult = null, error = null, diagnosis = null, status = null) }
    }

    /** Back to the login screen (after a refused login, or to try opening the terminal again). */
    fun backToLogin() {
        mutableState.update { it.copy(screen = Screen.LOGIN, error = null, diagnosis = null, status = null, canRetry = false) }
    }

    /**
     * Runs [block] on [io] ([retryable]: a money command [retry] can repeat); the state change it
     * returns is applied back on the main thread, after the progress events the call queued there,
     * so the final screen always wins. This is the screens' boundary: any exception (a
     * [GatewayException] with the SDK's diagnosis, or an unexpected one such as the bindings'
     * `InternalException` or an `IllegalStateException`) becomes the error screen, and `busy` is
     * always reset. Errors (`OutOfMemoryError`, ...) are not caught.
     */
    private fun launchCall(
        retryable: Boolean = false,
        block: suspend () -> (PosUiState) -> PosUiState,
    ): Job = viewModelScope.launch {
        mutableState.update { it.copy(busy = true, error = null, canRetry = false) }
        var change: (PosUiState) -> PosUiState = { it }
        try {
            change = withContext(io) { block() }
        } catch (e: CancellationException) {
            throw e
        } catch (e: GatewayException) {
            change = { it.copy(screen = Screen.ERROR, error = e.message, diagnosis = e.diagnosis, canRetry = retryable) }
        } catch (e: Exception) {
            val message = e.javaClass.simpleName + (e.message?.let { ": $it" } ?: "")
            change = { it.copy(screen = Screen.ERROR, error = message, diagnosis = unexpected(retryable), canRetry = retryable) }
        } finally {
            mutableState.update { change(it).copy(busy = false) }
        }
    }

    private companion object {
        /** What to tell the cashier about a failure the app did not expect (no SDK diagnosis). */
        fun unexpected(money: Boolean) = DiagnosisView(
            code = "sample.unexpected",
            money = if (money) "unknown" else "not_moved",
            titleZh = "意外错误",
            titleEn = "Unexpected error",
            explanationZh = if (money) "交易结果未知。终端会记录结果；重试不会重复扣款。" else "操作未完成，未发起交易。",
            explanationEn = if (money) {
                "The outcome is not known. The terminal records it; a retry never charges twice."
            } else {
                "The action did not complete; nothing was sent."
            },
            nextStepsZh = if (money) listOf("点击重试查看结果", "仍失败请联系技术支持") else listOf("再试一次", "仍失败请联系技术支持"),
            nextStepsEn = if (money) listOf("Tap Retry to see the outcome", "Call support if it fails again") else listOf("Try again", "Call support if it fails again"),
        )
    }
}

/** Whether this outcome is final: approved, declined, reversed, ... (not sending, unknown, reversing). */
fun TxnView.isDefinite(): Boolean = !reversalPending && state !in setOf("sending", "unknown", "reversing")
