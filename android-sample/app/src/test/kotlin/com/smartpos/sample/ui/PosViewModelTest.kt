package com.smartpos.sample.ui

import android.os.Looper
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.shadows.ShadowLooper

/**
 * The ViewModel against a scripted gateway (the run through the real SDK core needs the Kotlin
 * bindings; see the README). Runs on Robolectric's main looper, as `viewModelScope` does on a device.
 */
@RunWith(RobolectricTestRunner::class)
class PosViewModelTest {
    private val diagnosis = DiagnosisView(
        "network.timeout", "in_doubt_reversing", "网络超时", "Network timeout",
        "主机未应答，已自动冲正", "The host did not answer; a reversal is on its way",
        listOf("检查网络", "重新收款"), listOf("Check the network", "Charge again"),
    )

    private inner class Scripted : PaymentGateway {
        override val events = MutableSharedFlow<PosEvent>(extraBufferCapacity = 16)
        val orderIds = mutableListOf<String>()
        var failNextSale = false

        /** The next failing sale is still approved later (as the SDK finishes it after the app gave up). */
        var approvedAfterTimeout = false

        /** Outcomes by idempotency key, as the SDK's journal keeps them. */
        val journal = mutableMapOf<String, TxnView>()
        var cardsPresented = 0

        /** Thrown by the next settlement (an unexpected failure, not a GatewayException). */
        var settleFailure: Exception? = null
        private fun txn(ref: String, kind: String, amount: Long) =
            TxnView(ref, kind, "approved", amount, true, "123456789012", "A1B2C3", "00", false, null, null)

        val refundKeys = mutableListOf<String>()
        val voidKeys = mutableListOf<String>()
        var refundOutcomes = ArrayDeque<String>()

        override suspend fun login(operator: String, password: String): LoginOutcome {
            if (password == "0000") return LoginOutcome.MUST_CHANGE_PASSWORD
            if (password != "1357") throw GatewayException("wrong password", null)
            return LoginOutcome.LOGGED_IN
        }
        override suspend fun changePassword(operator: String, oldPassword: String, newPassword: String) {
            if (oldPassword != "0000") throw GatewayException("wrong password", null)
        }
        override suspend fun sale(amount: Long, idempotencyKey: String): TxnView {
            orderIds += idempotencyKey
            // A key seen before: the recorded outcome, no card.
            journal[idempotencyKey]?.let { return it.copy(replayed = true) }
            events.emit(PosEvent.PresentCard(amount))
            cardsPresented++
            val approved = txn(String.format("%012d", 1_000_000 + cardsPresented), "sale", amount)
            if (failNextSale) {
                failNextSale = false
                if (approvedAfterTimeout) journal[idempotencyKey] = approved
                throw GatewayException("timeout", diagnosis, outcomeUnknown = true)
            }
            journal[idempotencyKey] = approved
            return approved
        }
        override suspend fun refundQuote(reference: String) = RefundQuote(txn(reference, "sale", 1234), 1234, null, needsSupervisor = true)
        override suspend fun refund(reference: String, amount: Long, approval: SupervisorApproval?, idempotencyKey: String): TxnView {
            refundKeys += idempotencyKey
            return when (refundOutcomes.removeFirstOrNull()) {
                "unknown" -> throw GatewayException("no answer", null, outcomeUnknown = true)
                "in_doubt" -> txn("000001000002", "refund", amount).copy(state = "unknown", approved = false)
                "declined" -> txn("000001000002", "refund", amount).copy(state = "declined", approved = false)
                else -> txn("000001000002", "refund", amount)
            }
        }
        override suspend fun void(reference: String, idempotencyKey: String): TxnView {
            voidKeys += idempotencyKey
            return txn("000001000003", "void", 1234)
        }
        override suspend fun print(reference: String, customerCopy: Boolean) = PrintOutcome.OUT_OF_PAPER
        override suspend fun reprintLast(customerCopy: Boolean) = PrintOutcome.PRINTED
        override suspend fun settle(): SettlementView {
            settleFailure?.let { settleFailure = null; throw it }
            return SettlementView(1, true, 1, 1234, 1, 500)
        }
        override suspend fun transactions(limit: Int) = listOf(txn("000001000001", "sale", 1234))
        override suspend fun pending() = listOf(PendingView("reversal", "000001000004", "98", 1))
        override suspend fun recover() = RecoveryView(1, 0)
    }

    private fun settle(vm: PosViewModel, job: kotlinx.coroutines.Job) = runBlocking {
        while (job.isActive) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        ShadowLooper.idleMainLooper()
        vm.state.value
    }

    @Test
    fun login_sale_refund_void_settle_pending() {
        val gw = Scripted()
        var n = 0
        val vm = PosViewModel(gw, Dispatchers.Unconfined) { "order-${++n}" }
        assertEquals(Screen.ERROR, settle(vm, vm.login("01", "1234")).screen)
        assertEquals(Screen.CHANGE_PASSWORD, settle(vm, vm.login("01", "0000")).screen)
        assertEquals(Screen.AMOUNT, settle(vm, vm.changePassword("0000", "1357")).screen)
        val sale = settle(vm, vm.sale(1234))
        assertEquals(Screen.RESULT, sale.screen)
        assertEquals(1234L, sale.lastResult?.amount)
        assertEquals(Screen.REFUND, settle(vm, vm.quoteRefund("000001000001")).screen)
        val refund = settle(vm, vm.refund(500, SupervisorApproval("00", "9999")))
        assertEquals("refund", refund.lastResult?.kind)
        assertEquals(PrintOutcome.OUT_OF_PAPER, settle(vm, vm.printReceipt()).printStatus)
        assertEquals(PrintOutcome.PRINTED, settle(vm, vm.reprintLast()).printStatus)
        assertEquals("void", settle(vm, vm.void("000001000001")).lastResult?.kind)
        assertEquals(500L, settle(vm, vm.settle()).settlement?.creditAmount)
        assertEquals(1, settle(vm, vm.loadPending()).pending.size)
        assertEquals(1L, settle(vm, vm.recover()).recovery?.delivered)
    }

    @Test
    fun failed_sale_shows_diagnosis_and_retry_reuses_the_order_id() {
        val gw = Scripted()
        var n = 0
        val vm = PosViewModel(gw, Dispatchers.Unconfined) { "order-${++n}" }
        gw.failNextSale = true
        val failed = settle(vm, vm.sale(1234))
        assertEquals(Screen.ERROR, failed.screen)
        assertNotNull(failed.diagnosis)
        assertEquals("网络超时", failed.diagnosis!!.localized("zh").first)
        assertEquals("Charge again", failed.diagnosis!!.localized("en").third.last())
        assertTrue(failed.canRetry)
        settle(vm, vm.retry()!!)
        vm.newSale()
        settle(vm, vm.sale(99))
        // Approved: the intent is closed, the same amount later is a new sale.
        settle(vm, vm.sale(99))
        assertEquals(listOf("order-1", "order-1", "order-2", "order-3"), gw.orderIds)
        assertTrue(vm.openIntents().isEmpty())
    }

    @Test
    fun a_refund_keeps_its_key_until_a_definite_outcome() {
        val gw = Scripted()
        var n = 0
        val vm = PosViewModel(gw, Dispatchers.Unconfined) { "key-${++n}" }
        settle(vm, vm.quoteRefund("000001000001"))
        gw.refundOutcomes = ArrayDeque(listOf("unknown", "in_doubt", "approved", "declined"))
        val unknown = settle(vm, vm.refund(500, SupervisorApproval("00", "9999")))
        assertEquals(Screen.ERROR, unknown.screen)
        assertTrue(unknown.canRetry)
        // Retried twice (the second answer is still in doubt), then approved: one key throughout.
        settle(vm, vm.retry()!!)
        assertEquals(mapOf("refund:000001000001:500" to "key-1"), vm.openIntents())
        assertEquals("approved", settle(vm, vm.retry()!!).lastResult?.state)
        assertEquals(listOf("key-1", "key-1", "key-1"), gw.refundKeys)
        assertNull("nothing left to retry after a definite outcome", vm.retry())
        // A new refund intent (another lookup) gets a new key; a decline is definite too.
        settle(vm, vm.quoteRefund("000001000001"))
        assertEquals("declined", settle(vm, vm.refund(500, null)).lastResult?.state)
        assertEquals("key-2", gw.refundKeys.last())
        assertTrue(vm.openIntents().isEmpty())
        // Voids: one key per void intent, reused on retry.
        settle(vm, vm.void("000001000001"))
        assertEquals(listOf("key-3"), gw.voidKeys)
    }

    @Test
    fun the_next_customer_paying_the_same_amount_never_gets_the_earlier_result() {
        val gw = Scripted()
        var n = 0
        val vm = PosViewModel(gw, Dispatchers.Unconfined) { "order-${++n}" }
        // Customer A: the app gives up waiting ("unknown"); the SDK approves it afterwards.
        gw.failNextSale = true
        gw.approvedAfterTimeout = true
        val unknown = settle(vm, vm.sale(1234))
        assertEquals(Screen.ERROR, unknown.screen)
        assertTrue(unknown.canRetry)
        // The cashier starts the next sale instead: customer B, same amount, must tap a card.
        vm.newSale()
        assertTrue("newSale drops the earlier checkout", vm.openIntents().isEmpty())
        assertNull(vm.retry())
        val b = settle(vm, vm.sale(1234))
        assertEquals(Screen.RESULT, b.screen)
        assertEquals(listOf("order-1", "order-2"), gw.orderIds)
        assertEquals("B's card was read", 2, gw.cardsPresented)
        assertFalse(b.lastResult!!.replayed)
        assertEquals("000001000002", b.lastResult!!.reference)
        // Confirming the amount again (no newSale) is also a new checkout, never a replay.
        settle(vm, vm.sale(1234))
        assertEquals("order-3", gw.orderIds.last())
        assertEquals(3, gw.cardsPresented)
    }

    @Test
    fun retrying_the_same_checkout_shows_the_earlier_attempt_s_result_as_replayed() {
        val gw = Scripted()
        var n = 0
        val vm = PosViewModel(gw, Dispatchers.Unconfined) { "order-${++n}" }
        gw.failNextSale = true
        gw.approvedAfterTimeout = true
        assertEquals(Screen.ERROR, settle(vm, vm.sale(1234)).screen)
        assertEquals(mapOf("sale:1234" to "order-1"), vm.openIntents())
        val retried = settle(vm, vm.retry()!!)
        assertEquals(Screen.RESULT, retried.screen)
        assertEquals(listOf("order-1", "order-1"), gw.orderIds)
        assertEquals("no second card read", 1, gw.cardsPresented)
        val r = retried.lastResult!!
        assertTrue("the UI state keeps the replayed flag", r.replayed)
        assertTrue(r.approved)
        assertTrue("approved: nothing left to retry", vm.openIntents().isEmpty())
    }

    @Test
    fun unexpected_exceptions_become_the_error_screen_and_reset_busy() {
        val gw = Scripted()
        val vm = PosViewModel(gw, Dispatchers.Unconfined)
        gw.settleFailure = IllegalStateException("terminal is closed")
        val failed = settle(vm, vm.settle())
        assertEquals(Screen.ERROR, failed.screen)
        assertFalse(failed.busy)
        assertTrue(failed.error!!, failed.error!!.contains("terminal is closed"))
        assertEquals("sample.unexpected", failed.diagnosis?.code)
        assertFalse(failed.canRetry)
        // The app still works afterwards.
        assertEquals(Screen.SETTLEMENT, settle(vm, vm.settle()).screen)
    }

    /** Idles the main looper until [done] holds for the ViewModel's state (at most 10 s). */
    private fun until(vm: PosViewModel, done: (PosUiState) -> Boolean): PosUiState {
        val end = System.currentTimeMillis() + 10_000
        while (!done(vm.state.value) && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        ShadowLooper.idleMainLooper()
        return vm.state.value
    }

    @Test
    fun a_terminal_that_cannot_open_is_an_error_screen_and_opens_off_the_main_thread() {
        val gw = Scripted()
        val refused = diagnosis.copy(code = "journal.refused", money = "not_moved", titleEn = "Journal refused: call support")
        val onMain = mutableListOf<Boolean>()
        val deferred = DeferredGateway {
            onMain += Looper.myLooper() == Looper.getMainLooper()
            if (onMain.size == 1) throw GatewayException("JournalRefused: reason=old copy", refused)
            gw
        }
        // The ViewModel opens the terminal as soon as it exists; the refusal is shown, no crash.
        val vm = PosViewModel(deferred, Dispatchers.IO)
        val failed = until(vm) { it.screen == Screen.ERROR && !it.busy }
        assertEquals(Screen.ERROR, failed.screen)
        assertEquals("journal.refused", failed.diagnosis?.code)
        assertFalse(failed.busy)
        // Back to login; the next command opens it again (now it works).
        vm.backToLogin()
        assertEquals(Screen.LOGIN, vm.state.value.screen)
        assertEquals(Screen.CHANGE_PASSWORD, settle(vm, vm.login("01", "0000")).screen)
        assertEquals(listOf(false, false), onMain)
        // Events flow once it is open.
        val sale = settle(vm, vm.sale(1234))
        assertEquals(Screen.RESULT, sale.screen)
    }
}
