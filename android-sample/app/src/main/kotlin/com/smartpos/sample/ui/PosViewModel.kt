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
enum class Screen { LOGIN, AMOUNT, PRESENT_CARD, PROCESSING, RESULT, TRANSACTIONS, REFUND, SETTLEMENT, PENDING, ERROR }

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
)

/**
 * The cashier flow. Long calls run in [viewModelScope] on [io] (the SDK's suspend functions do
 * not block, but the bridge's callbacks may); the SDK's events update [state] as they come.
 *
 * @param newOrderId the idempotency key of a new sale; a retried sale after an ambiguous failure
 *   reuses the last one, so the SDK returns the recorded outcome instead of charging twice.
 */
class PosViewModel(
    private val gateway: PaymentGateway,
    private val io: CoroutineDispatcher = Dispatchers.IO,
    private val newOrderId: () -> String = { UUID.randomUUID().toString() },
) : ViewModel() {
    private val mutableState = MutableStateFlow(PosUiState())

    /** The UI state. */
    val state: StateFlow<PosUiState> = mutableState.asStateFlow()

    private var pendingOrderId: String? = null

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

    /** Operator login (signs the terminal in). */
    fun login(operator: String, password: String): Job = launchCall {
        gateway.login(operator, password)
        ({ it.copy(screen = Screen.AMOUNT, operator = operator) })
    }

    /** Starts a sale of [amount] minor units; the SDK asks for the card. */
    fun sale(amount: Long): Job {
        val orderId = pendingOrderId ?: newOrderId().also { pendingOrderId = it }
        mutableState.update { it.copy(screen = Screen.PRESENT_CARD) }
        return launchCall {
            val r = gateway.sale(amount, orderId)
            pendingOrderId = null
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

    /** Refunds [amount] of the quoted original with a supervisor's approval. */
    fun refund(amount: Long, approval: SupervisorApproval): Job = launchCall {
        val q = state.value.refundQuote ?: throw GatewayException("look up the original first", null)
        val r = gateway.refund(q.original.reference, amount, approval)
        ({ it.copy(screen = Screen.RESULT, lastResult = r, refundQuote = null, diagnosis = r.diagnosis) })
    }

    /** Voids [reference]. */
    fun void(reference: String): Job = launchCall {
        val r = gateway.void(reference)
        ({ it.copy(screen = Screen.RESULT, lastResult = r, diagnosis = r.diagnosis) })
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

    /** Back to amount entry. */
    fun newSale() {
        mutableState.update { it.copy(screen = Screen.AMOUNT, lastResult = null, error = null, diagnosis = null, status = null) }
    }

    /**
     * Runs [block] on [io]; the state change it returns is applied back on the main thread, after
     * the progress events the call queued there, so the final screen always wins.
     */
    private fun launchCall(block: suspend () -> (PosUiState) -> PosUiState): Job = viewModelScope.launch {
        mutableState.update { it.copy(busy = true, error = null) }
        val change: (PosUiState) -> PosUiState = try {
            withContext(io) { block() }
        } catch (e: GatewayException) {
            { it.copy(screen = Screen.ERROR, error = e.message, diagnosis = e.diagnosis) }
        }
        mutableState.update { change(it).copy(busy = false) }
    }
}
