package com.smartpos.sample.ui

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
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
 * Idempotency: every money command (sale, refund, void) belongs to a cashier intent ("charge
 * 12.34", "refund 5.00 of 000001000001", "void 000001000001"). Its key is made once, when the
 * cashier confirms the screen, and reused by every retry of that intent ([retry], or confirming
 * the same amount again), so the SDK returns the recorded outcome instead of moving money twice.
 * The key is dropped only on a definite outcome (approved, declined, reversed: a result that is
 * not in doubt), never on a timeout or an unknown outcome.
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

    /** Open intents and their keys (intent description -> idempotency key). */
    private val intentKeys = mutableMapOf<String, String>()

    /** The last money command, re-run by [retry]. */
    @Volatile
    private var lastMoneyCall: (() -> Job)? = null

    init {
        viewModelScope.launch {
            gateway.events.collect { e -> mutableState.update { onEvent(it, e) } }
        }
    }

    // Progress events only matter while a command runs; a late one must not hide the result.
    private fun onEvent(s: PosUiState, e: PosEvent): PosUiState = if (!s.busy) s else when (e) {
        is PosEvent.PresentCard -> s.copy(screen = Screen.PRESENT_CARD, status = "present_card")
        is PosEvent.CardRead -> s.copy(screen = Screen.PROCESSING, status = "card_read ${e.panMasked ?: ""}".trim())
        is PosEvent.Processing -> s.copy(screen = Screen.PROCESSING, status = "processing ${e.what}")
        is PosEvent.ReversalSent -> s.copy(status = "reversal ${e.reference}")
        is PosEvent.Other -> s
    }

    /** The idempotency key of [intent]: made on its first confirmation, then reused. */
    private fun keyFor(intent: String): String = synchronized(intentKeys) {
        intentKeys.getOrPut(intent) { newOrderId() }
    }

    /** Drops [intent]'s key when [result] is definite; keeps it while the money is in doubt. */
    private fun settled(intent: String, result: TxnView) {
        if (!result.isDefinite()) return
        synchronized(intentKeys) { intentKeys.remove(intent) }
        lastMoneyCall = null
    }

    /** The idempotency keys of the intents still open (for the pending screen and tests). */
    fun openIntents(): Map<String, String> = synchronized(intentKeys) { intentKeys.toMap() }

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

    /** Starts a contactless sale of [amount] minor units (the cashier confirmed the amount). */
    fun sale(amount: Long): Job {
        val intent = "sale:$amount"
        val key = keyFor(intent)
        val call = {
            mutableState.update { it.copy(screen = Screen.PRESENT_CARD, printStatus = null) }
            launchCall(retryable = true) {
                val r = gateway.sale(amount, key)
                settled(intent, r)
                ({ it.copy(screen = Screen.RESULT, lastResult = r, diagnosis = r.diagnosis) })
            }
        }
        lastMoneyCall = call
        return call()
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
        val q = state.value.refundQuote
        val reference = q?.original?.reference
        val intent = "refund:$reference:$amount"
        val key = keyFor(intent)
        val call = {
            launchCall(retryable = true) {
                if (reference == null) throw GatewayException("look up the original first", null)
                val r = gateway.refund(reference, amount, approval, key)
                settled(intent, r)
                ({ it.copy(screen = Screen.RESULT, lastResult = r, refundQuote = null, diagnosis = r.diagnosis, printStatus = null) })
            }
        }
        lastMoneyCall = call
        return call()
    }

    /** Voids [reference]. */
    fun void(reference: String): Job {
        val intent = "void:$reference"
        val key = keyFor(intent)
        val call = {
            launchCall(retryable = true) {
                val r = gateway.void(reference, key)
                settled(intent, r)
                ({ it.copy(screen = Screen.RESULT, lastResult = r, diagnosis = r.diagnosis, printStatus = null) })
            }
        }
        lastMoneyCall = call
        return call()
    }

    /**
     * Runs the last money command again with the same idempotency key (after an error, e.g. no
     * answer in time); null when there is nothing to retry.
     */
    fun retry(): Job? = lastMoneyCall?.invoke()

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
     * Back to amount entry. Open intents keep their keys: confirming the same amount again after
     * an unknown outcome is a retry, not a second charge.
     */
    fun newSale() {
        lastMoneyCall = null
        mutableState.update { it.copy(screen = Screen.AMOUNT, lastResult = null, error = null, diagnosis = null, status = null) }
    }

    /**
     * Runs [block] on [io] ([retryable]: a money command [retry] can repeat); the state change it returns is applied back on the main thread, after
     * the progress events the call queued there, so the final screen always wins.
     */
    private fun launchCall(
        retryable: Boolean = false,
        block: suspend () -> (PosUiState) -> PosUiState,
    ): Job = viewModelScope.launch {
        mutableState.update { it.copy(busy = true, error = null, canRetry = false) }
        val change: (PosUiState) -> PosUiState = try {
            withContext(io) { block() }
        } catch (e: GatewayException) {
            { it.copy(screen = Screen.ERROR, error = e.message, diagnosis = e.diagnosis, canRetry = retryable) }
        }
        mutableState.update { change(it).copy(busy = false) }
    }
}

/** Whether this outcome is final: approved, declined, reversed, ... (not sending, unknown, reversing). */
fun TxnView.isDefinite(): Boolean = !reversalPending && state !in setOf("sending", "unknown", "reversing")
