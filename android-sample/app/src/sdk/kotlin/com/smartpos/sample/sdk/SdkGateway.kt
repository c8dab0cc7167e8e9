package com.smartpos.sample.sdk

import com.smartpos.sample.ui.DiagnosisView
import com.smartpos.sample.ui.GatewayException
import com.smartpos.sample.ui.PaymentGateway
import com.smartpos.sample.ui.PendingView
import com.smartpos.sample.ui.PosEvent
import com.smartpos.sample.ui.RecoveryView
import com.smartpos.sample.ui.RefundQuote
import com.smartpos.sample.ui.SettlementView
import com.smartpos.sample.ui.SupervisorApproval
import com.smartpos.sample.ui.TxnView
import com.smartpos.sdk.diagnosis
import com.smartpos.sdk.events
import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.Diagnosis
import com.smartpos.sdk.ffi.ReferenceRequest
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TxnKind
import com.smartpos.sdk.ffi.TxnRecord
import com.smartpos.sdk.ffi.TxnResult
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import java.util.UUID

/** Checks an operator's (or a supervisor's) password; the SDK itself knows only operator codes. */
fun interface OperatorCheck {
    /** True when [password] is right for [operator]; [supervisor] asks for refund-approval rights. */
    fun check(operator: String, password: String, supervisor: Boolean): Boolean
}

/**
 * [PaymentGateway] over the SmartPOS SDK's [Terminal] (Kotlin bindings, `com.smartpos.sdk.ffi`).
 *
 * What the SDK does: sign-in, sale (the card comes from the terminal's `CardReader`), void,
 * refund, settlement, the journal, pending reversals/advices and their recovery, events and
 * diagnoses. What this bridge adds, because the SDK has no call for it yet:
 * - passwords ([OperatorCheck]): the SDK's `signIn` takes the operator code only;
 * - the refund quote: computed here from the local journal (original approved sale minus the
 *   refunds of it recorded on this terminal; refunds made elsewhere are not known);
 * - the receipt preview: plain text built here from the journaled record.
 *
 * Every [SmartPosException] becomes a [GatewayException] carrying the SDK's diagnosis; a decline
 * is a normal [TxnView] with `approved = false` and its diagnosis.
 */
class SdkGateway(
    private val terminal: Terminal,
    private val operators: OperatorCheck,
    private val newKey: () -> String = { UUID.randomUUID().toString() },
) : PaymentGateway, AutoCloseable {
    @Volatile
    private var operator: String? = null

    override val events: Flow<PosEvent> = terminal.events().map { it.toPosEvent() }

    override suspend fun login(operator: String, password: String) {
        if (!operators.check(operator, password, supervisor = false)) {
            throw GatewayException("wrong operator or password", localDiagnosis(LOGIN_REFUSED))
        }
        sdk { terminal.signIn(operator) }
        this.operator = operator
    }

    override suspend fun sale(amount: Long, orderId: String): TxnView {
        if (amount <= 0) throw GatewayException("amount must be positive", null)
        val r = sdk { terminal.sale(SaleRequest(amount.toULong(), orderId, operator, null)) }
        return r.toView()
    }

    override suspend fun refundQuote(reference: String): RefundQuote {
        val original = sdk { terminal.transaction(reference) }
            ?: throw GatewayException("no transaction $reference on this terminal", localDiagnosis(NOT_FOUND))
        val view = original.toView(null, false)
        val refusal = when {
            original.kind != TxnKind.SALE && original.kind != TxnKind.COMPLETION -> "not_a_sale"
            original.state == TxnState.VOIDED -> "voided"
            original.state != TxnState.APPROVED -> "not_approved"
            else -> null
        }
        if (refusal != null) return RefundQuote(view, 0, refusal)
        val refunded = sdk { terminal.journalAll() }
            .filter { it.kind == TxnKind.REFUND && it.originalRef == reference && it.state in MONEY_MOVED }
            .sumOf { it.amount.toLong() }
        val left = (original.amount.toLong() - refunded).coerceAtLeast(0)
        return RefundQuote(view, left, if (left == 0L) "fully_refunded" else null)
    }

    override suspend fun refund(reference: String, amount: Long, approval: SupervisorApproval): TxnView {
        if (!operators.check(approval.supervisor, approval.password, supervisor = true)) {
            throw GatewayException("supervisor approval refused", localDiagnosis(APPROVAL_REFUSED))
        }
        val quote = refundQuote(reference)
        if (quote.refusal != null) throw GatewayException("refund refused: ${quote.refusal}", localDiagnosis(REFUND_REFUSED))
        if (amount <= 0 || amount > quote.refundable) {
            throw GatewayException("refund of $amount exceeds the refundable ${quote.refundable}", localDiagnosis(REFUND_REFUSED))
        }
        val r = sdk { terminal.refund(AmountRequest(reference, amount.toULong(), newKey(), operator)) }
        return r.toView()
    }

    override suspend fun void(reference: String): TxnView =
        sdk { terminal.void(ReferenceRequest(reference, newKey(), operator)) }.toView()

    override suspend fun settle(): SettlementView {
        val s = sdk { terminal.settle() }
        return SettlementView(
            s.batch.toLong(), s.balanced, s.debitCount.toLong(), s.debitAmount.toLong(),
            s.creditCount.toLong(), s.creditAmount.toLong(),
        )
    }

    override suspend fun transactions(limit: Int): List<TxnView> {
        val n = limit.coerceIn(0, MAX_LIST).toUInt()
        return sdk { terminal.journalRecent(n) }
            .sortedWith(compareByDescending<TxnRecord> { it.createdAtMs }.thenByDescending { it.reference })
            .map { it.toView(null, terminal.inDoubtOrFalse(it.reference)) }
    }

    override suspend fun pending(): List<PendingView> =
        sdk { terminal.pending() }.map { PendingView(it.kind, it.reference, it.reasonCode, it.attempts.toLong()) }

    override suspend fun recover(): RecoveryView {
        val r = sdk { terminal.recover() }
        return RecoveryView(r.delivered.toLong(), r.remaining.toLong())
    }

    /** Closes the terminal (waits for a running command). */
    override fun close() = terminal.close()

    private fun Terminal.inDoubtOrFalse(reference: String): Boolean =
        try {
            inDoubt(reference)
        } catch (_: SmartPosException) {
            false
        }

    companion object {
        private const val MAX_LIST = 500
        private val MONEY_MOVED = setOf(TxnState.APPROVED, TxnState.QUEUED, TxnState.SENDING, TxnState.UNKNOWN)

        private const val LOGIN_REFUSED = "sample.login_refused"
        private const val NOT_FOUND = "sample.not_found"
        private const val APPROVAL_REFUSED = "sample.approval_refused"
        private const val REFUND_REFUSED = "sample.refund_refused"

        /** Runs an SDK call; its errors become [GatewayException]s with the SDK's diagnosis. */
        internal suspend fun <T> sdk(call: suspend () -> T): T =
            try {
                call()
            } catch (e: SmartPosException) {
                throw GatewayException(e.javaClass.simpleName + ": " + (e.message ?: ""), e.diagnosis?.toView(), e)
            }

        /** The SDK's diagnosis for the screens. */
        fun Diagnosis.toView() = DiagnosisView(
            code, money, titleZh, titleEn, explanationZh, explanationEn, nextStepsZh, nextStepsEn,
        )

        /** Diagnoses for the checks this bridge makes itself (nothing was sent; no money moved). */
        internal fun localDiagnosis(code: String): DiagnosisView = when (code) {
            LOGIN_REFUSED -> DiagnosisView(
                code, "not_moved", "登录失败", "Login refused", "操作员号或密码不正确。",
                "The operator code or the password is wrong.", listOf("检查操作员号和密码后重试"),
                listOf("Check the operator code and password, then try again"),
            )
            NOT_FOUND -> DiagnosisView(
                code, "not_moved", "找不到原交易", "Original not found", "本终端的流水中没有这笔交易。",
                "This terminal's journal has no such transaction.", listOf("核对参考号", "在原终端上办理"),
                listOf("Check the reference", "Use the terminal that took the payment"),
            )
            APPROVAL_REFUSED -> DiagnosisView(
                code, "not_moved", "主管授权失败", "Supervisor approval refused", "主管号或密码不正确，未发起退货。",
                "The supervisor code or password is wrong; no refund was sent.", listOf("请主管重新授权"),
                listOf("Ask the supervisor to approve again"),
            )
            else -> DiagnosisView(
                code, "not_moved", "不能退货", "Refund not possible", "原交易不可退或金额超过可退金额，未发起退货。",
                "The original cannot be refunded or the amount exceeds what is left; nothing was sent.",
                listOf("核对原交易和可退金额"), listOf("Check the original and the refundable amount"),
            )
        }

        /** A terminal event in the screens' terms (no card data beyond the masked PAN). */
        fun TerminalEvent.toPosEvent(): PosEvent = when (this) {
            is TerminalEvent.WaitingForCard -> PosEvent.PresentCard(amount.toLong())
            is TerminalEvent.CardRead -> PosEvent.CardRead(panMasked)
            is TerminalEvent.Sending -> PosEvent.Processing(message)
            is TerminalEvent.ReversalSent -> PosEvent.ReversalSent(reference)
            is TerminalEvent.PendingDelivered -> PosEvent.Other("delivered $kind $reference")
            is TerminalEvent.Ignored -> PosEvent.Other("ignored: $why")
            // Newer SDK versions add event kinds (e.g. `Other`): shown as their name only.
            else -> PosEvent.Other(javaClass.simpleName)
        }

        private fun TxnResult.toView(): TxnView = record.toView(diagnosis?.toView(), reversalPending)

        private fun TxnRecord.toView(diagnosis: DiagnosisView?, reversalPending: Boolean): TxnView = TxnView(
            reference = reference,
            kind = kind.name.lowercase(),
            state = state.name.lowercase(),
            amount = amount.toLong(),
            approved = state == TxnState.APPROVED || state == TxnState.QUEUED,
            rrn = rrn,
            authCode = authCode,
            responseCode = responseCode,
            reversalPending = reversalPending,
            receiptPreview = receiptPreview(this),
            diagnosis = diagnosis,
        )

        /** Plain-text receipt (the SDK has no receipt call yet): masked PAN only. */
        internal fun receiptPreview(r: TxnRecord): String = buildString {
            appendLine("交易类型/TYPE: ${r.kind.name}")
            appendLine("参考号/REF: ${r.reference}  批次/BATCH: ${r.batch}")
            r.panMasked?.let { appendLine("卡号/CARD: $it") }
            appendLine("金额/AMOUNT: ${r.currency} ${r.amount / 100uL}.${(r.amount % 100uL).toString().padStart(2, '0')}")
            appendLine("状态/STATUS: ${r.state.name}${r.responseCode?.let { " ($it)" } ?: ""}")
            r.rrn?.let { appendLine("RRN: $it") }
            r.authCode?.let { appendLine("授权码/AUTH: $it") }
            append("日期时间/DATE: ${r.localDate} ${r.localTime}")
        }
    }
}
