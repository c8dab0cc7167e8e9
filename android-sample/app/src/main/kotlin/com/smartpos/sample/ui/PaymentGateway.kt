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

    /**
     * Waits until the gateway can take commands (e.g. the SDK's terminal is open); throws as the
     * commands do (a [GatewayException] with a diagnosis) when it cannot.
     */
    suspend fun ready() {}

    /**
     * Logs operator [operator] in with [password] (checked by the SDK) and signs the terminal in
     * when it has no working keys yet. A first login with the default password gives
     * [LoginOutcome.MUST_CHANGE_PASSWORD]: call [changePassword].
     */
    suspend fun login(operator: String, password: String): LoginOutcome

    /** Changes [operator]'s password (the forced first change, or later) and logs it in. */
    suspend fun changePassword(operator: String, oldPassword: String, newPassword: String)

    /**
     * A card sale of [amount] minor units (the device's EMV kernel when it has one, else a tap on
     * NFC or the mPOS reader). [idempotencyKey] identifies one checkout: a
     * retry with the same key returns the recorded outcome ([TxnView.replayed]) and charges
     * nothing twice; a new checkout always has a new key.
     */
    suspend fun sale(amount: Long, idempotencyKey: String): TxnView

    /**
     * Stops waiting for the customer's card (the cashier cancelled the "present card" screen):
     * the running [sale] then fails with "no card", nothing sent. False when nothing was waiting.
     */
    fun cancelCardWait(): Boolean = false

    /** Looks up [reference] and says how much may still be refunded, and which rules deny. */
    suspend fun refundQuote(reference: String): RefundQuote

    /**
     * Refunds [amount] of [reference]; [approval] is the supervisor's approval when the refund
     * policy asks for one. [idempotencyKey] as for [sale].
     */
    suspend fun refund(reference: String, amount: Long, approval: SupervisorApproval?, idempotencyKey: String): TxnView

    /** Voids [reference] (a sale of the open batch). [idempotencyKey] as for [sale]. */
    suspend fun void(reference: String, idempotencyKey: String): TxnView

    /** Prints [reference]'s receipt ([customerCopy] or the merchant's); the printer's status. */
    suspend fun print(reference: String, customerCopy: Boolean): PrintOutcome

    /** Prints the most recent transaction's receipt again, marked as a reprint. */
    suspend fun reprintLast(customerCopy: Boolean): PrintOutcome

    /** Settles the open batch. */
    suspend fun settle(): SettlementView

    /** The last [limit] transactions, newest first. */
    suspend fun transactions(limit: Int): List<TxnView>

    /** Reversals and advices waiting for the host. */
    suspend fun pending(): List<PendingView>

    /** Sends the pending items now. */
    suspend fun recover(): RecoveryView
}

/** Result of a login: in, or the default password must be changed first. */
enum class LoginOutcome { LOGGED_IN, MUST_CHANGE_PASSWORD }

/**
 * What the printer said about a receipt (a failed print never changes the transaction).
 * [NO_PERMISSION]: the app may not use the printer (Bluetooth "Nearby devices" permission not
 * granted, or USB access not allowed yet); grant it, then reprint.
 */
enum class PrintOutcome { PRINTED, OUT_OF_PAPER, OVERHEATED, COVER_OPEN, NO_PRINTER, BUSY, NO_PERMISSION }

/**
 * A supervisor's approval of a refund. The SDK's supervisor is operator `00`; [supervisor] is
 * shown and logged by the app, the SDK checks [password].
 */
data class SupervisorApproval(val supervisor: String, val password: String) {
    override fun toString(): String = "SupervisorApproval(supervisor=$supervisor, password=***)"
}

/**
 * One transaction for the screens. [replayed]: the SDK returned the outcome recorded earlier
 * under the same idempotency key (a retry of the same checkout); no card was read and nothing was
 * sent now, and the screen says it is the result of the earlier attempt.
 *
 * Card details from the SDK: [entryMode] (`chip`, `contactless`, `swipe`, `fallback`, `keyed`),
 * the chip application's [aid] and the card's [tc] (hex; an inserted card that accepted at its
 * final decision), and [declinedByCard]: the card declined after the host approved, so the SDK
 * reverses the payment (the screen says so; the diagnosis says where the money stands). [aid]
 * and [tc] are null for a replayed outcome.
 */
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
    val replayed: Boolean = false,
    val entryMode: String? = null,
    val aid: String? = null,
    val tc: String? = null,
    val declinedByCard: Boolean = false,
)

/**
 * How much of a sale may be refunded ([refundable]: the remainder after earlier refunds and the
 * fee), the first denying rule ([refusal], e.g. `policy.exceeds_window`) with every rule in
 * [denials], and whether a supervisor must approve ([needsSupervisor]). From the SDK's policy.
 */
data class RefundQuote(
    val original: TxnView,
    val refundable: Long,
    val refusal: String?,
    val needsSupervisor: Boolean = false,
    val denials: List<DiagnosisView> = emptyList(),
)

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

/**
 * A command failed; [diagnosis] says what to tell the cashier when the SDK knows.
 * [outcomeUnknown] is true when the command may have reached the host (e.g. no answer in time
 * on the app's side): the ViewModel then keeps the idempotency key so a retry cannot charge twice.
 */
class GatewayException(
    message: String,
    val diagnosis: DiagnosisView?,
    cause: Throwable? = null,
    val outcomeUnknown: Boolean = false,
) : Exception(message, cause)
