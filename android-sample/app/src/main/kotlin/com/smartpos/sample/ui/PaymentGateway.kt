package com.smartpos.sample.ui

import kotlinx.coroutines.flow.Flow

/**
 * What the screens need from the payment SDK, in the app's own terms. The real implementation
 * is [com.smartpos.sample.sdk.SdkGateway] over the SDK's `Terminal`; keeping the screens on this
 * interface lets them be tested with the real core (through the bridge) or a fake.
 */
interface PaymentGateway {
    /** Progress events of the running command ("present card", "processing", ...). */
    val events: Flow<PosEvent>

    /** Checks the operator and signs the terminal in. */
    suspend fun login(operator: String, password: String)

    /** A sale of [amount] minor units; [orderId] is the idempotency key. */
    suspend fun sale(amount: Long, orderId: String): TxnView

    /** Looks up [reference] and says how much may still be refunded. */
    suspend fun refundQuote(reference: String): RefundQuote

    /** Refunds [amount] of [reference], approved by a supervisor. */
    suspend fun refund(reference: String, amount: Long, approval: SupervisorApproval): TxnView

    /** Voids [reference] (a sale of the open batch). */
    suspend fun void(reference: String): TxnView

    /** Settles the open batch. */
    suspend fun settle(): SettlementView

    /** The last [limit] transactions, newest first. */
    suspend fun transactions(limit: Int): List<TxnView>

    /** Reversals and advices waiting for the host. */
    suspend fun pending(): List<PendingView>

    /** Sends the pending items now. */
    suspend fun recover(): RecoveryView
}

/** A supervisor's approval of a refund. */
data class SupervisorApproval(val supervisor: String, val password: String) {
    override fun toString(): String = "SupervisorApproval(supervisor=$supervisor, password=***)"
}

/** One transaction for the screens. */
data class TxnView(
    val reference: String,
    val kind: String,
    val state: String,
    val amount: Long,
    val approved: Boolean,
    val rrn: String?,
    val authCode: String?,
    val responseCode: String?,
    val reversalPending: Boolean,
    val receiptPreview: String?,
    val diagnosis: DiagnosisView?,
)

/** How much of a sale may be refunded, and why not when nothing. */
data class RefundQuote(val original: TxnView, val refundable: Long, val refusal: String?)

/** A settled batch. */
data class SettlementView(val batch: Long, val balanced: Boolean, val debitCount: Long, val debitAmount: Long, val creditCount: Long, val creditAmount: Long)

/** A reversal or advice still owed to the host. */
data class PendingView(val kind: String, val reference: String, val reasonCode: String?, val attempts: Long)

/** Result of sending the pending items. */
data class RecoveryView(val delivered: Long, val remaining: Long)

/** Progress of a command, for the screens. */
sealed interface PosEvent {
    /** Show "present card". */
    data class PresentCard(val amount: Long) : PosEvent

    /** The card was read. */
    data class CardRead(val panMasked: String?) : PosEvent

    /** Talking to the host. */
    data class Processing(val what: String) : PosEvent

    /** A reversal went out. */
    data class ReversalSent(val reference: String) : PosEvent

    /** Anything else, as text for the log line. */
    data class Other(val text: String) : PosEvent
}

/** The SDK's diagnosis, both languages; [localized] picks one by locale. */
data class DiagnosisView(
    val code: String,
    val money: String,
    val titleZh: String,
    val titleEn: String,
    val explanationZh: String,
    val explanationEn: String,
    val nextStepsZh: List<String>,
    val nextStepsEn: List<String>,
) {
    /** Title, explanation and next steps in Chinese when [language] is `zh`, else English. */
    fun localized(language: String): Triple<String, String, List<String>> =
        if (language == "zh") Triple(titleZh, explanationZh, nextStepsZh) else Triple(titleEn, explanationEn, nextStepsEn)
}

/** A command failed; [diagnosis] says what to tell the cashier when the SDK knows. */
class GatewayException(message: String, val diagnosis: DiagnosisView?, cause: Throwable? = null) :
    Exception(message, cause)
