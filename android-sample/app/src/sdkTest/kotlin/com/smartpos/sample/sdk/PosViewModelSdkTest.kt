package com.smartpos.sample.sdk

import com.smartpos.sample.ui.PosUiState
import com.smartpos.sample.ui.PosViewModel
import com.smartpos.sample.ui.Screen
import com.smartpos.sample.ui.SupervisorApproval
import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.Dispatchers
import com.smartpos.sample.ui.PosEvent
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.shadows.ShadowLooper
import java.io.File
import java.nio.file.Files
import java.util.Collections

/**
 * The ViewModel driving the real SDK core through [SdkGateway]: the SDK's Kotlin bindings, the
 * Rust terminal and the testkit's host simulator on loopback (TLS, TEST keys and TEST card).
 */
@RunWith(RobolectricTestRunner::class)
class PosViewModelSdkTest {
    private lateinit var sim: HostSimulator
    private lateinit var dir: File
    private lateinit var terminal: Terminal
    private lateinit var gateway: SdkGateway
    private val cardsAsked = mutableListOf<Long>()

    @Before
    fun open() {
        sim = HostSimulator()
        val address = sim.start("cup", true, null)
        dir = Files.createTempDirectory("smartpos-sample").toFile()
        val config = TerminalConfig(
            tid = "10000001", mid = "898100012340001", host = address, tls = sim.tlsConfig(),
            connectTimeoutMs = 2_000u, responseTimeoutMs = 5_000u, utcOffsetMinutes = 480,
        )
        // The simulator's documented TEST card, keyed (never a real card).
        val reader = SourceCardReader { amount -> cardsAsked += amount; CardInput.keyed(TEST_PAN, "3012") }
        terminal = Terminal.open(config, dir.path, testSecureStore(), reader)
        val operators = OperatorCheck { op, pw, sup -> if (sup) op == "00" && pw == "9999" else op == "01" && pw == "0000" }
        gateway = SdkGateway(terminal, operators)
    }

    @After
    fun close() {
        gateway.close()
        sim.shutdown()
        sim.close()
        dir.deleteRecursively()
    }

    private fun run(vm: PosViewModel, job: Job): PosUiState {
        val end = System.currentTimeMillis() + 20_000
        while (job.isActive && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        ShadowLooper.idleMainLooper()
        assertFalse("call did not finish", job.isActive)
        return vm.state.value
    }

    private fun newVm(): PosViewModel {
        var n = 0
        return PosViewModel(gateway, Dispatchers.IO) { "order-${++n}" }
    }

    @Test
    fun sale_and_partial_refunds_through_the_real_core() {
        val vm = newVm()
        val refused = run(vm, vm.login("01", "bad"))
        assertEquals(Screen.ERROR, refused.screen)
        assertEquals("sample.login_refused", refused.diagnosis?.code)
        assertEquals(Screen.AMOUNT, run(vm, vm.login("01", "0000")).screen)
        assertTrue(terminal.isSignedIn())

        val sale = run(vm, vm.sale(1234))
        assertEquals(Screen.RESULT, sale.screen)
        val txn = sale.lastResult!!
        assertEquals("sale", txn.kind)
        assertEquals("approved", txn.state)
        assertTrue(txn.approved)
        assertEquals("00", txn.responseCode)
        assertNotNull(txn.rrn)
        assertEquals(listOf(1234L), cardsAsked)
        val receipt = txn.receiptPreview!!
        assertTrue(receipt, receipt.contains("622202*********0128"))
        assertFalse(receipt, receipt.contains(TEST_PAN))
        assertTrue(receipt, receipt.contains("156 12.34"))
        assertEquals("order-1", terminal.transaction(txn.reference)?.idempotencyKey)

        val quote = run(vm, vm.quoteRefund(txn.reference))
        assertEquals(Screen.REFUND, quote.screen)
        assertEquals(1234L, quote.refundQuote?.refundable)
        assertNull(quote.refundQuote?.refusal)

        val badApproval = run(vm, vm.refund(500, SupervisorApproval("00", "0000")))
        assertEquals(Screen.ERROR, badApproval.screen)
        assertEquals("sample.approval_refused", badApproval.diagnosis?.code)

        run(vm, vm.quoteRefund(txn.reference))
        val refund = run(vm, vm.refund(500, SupervisorApproval("00", "9999")))
        assertEquals(Screen.RESULT, refund.screen)
        assertEquals("refund", refund.lastResult?.kind)
        assertEquals(500L, refund.lastResult?.amount)
        assertTrue(refund.lastResult!!.approved)
        assertEquals(txn.reference, terminal.transaction(refund.lastResult!!.reference)?.originalRef)

        // The quote now comes from the journal: 1234 - 500 left; more than that is refused locally.
        assertEquals(734L, run(vm, vm.quoteRefund(txn.reference)).refundQuote?.refundable)
        val tooMuch = run(vm, vm.refund(800, SupervisorApproval("00", "9999")))
        assertEquals(Screen.ERROR, tooMuch.screen)
        assertEquals("sample.refund_refused", tooMuch.diagnosis?.code)

        val list = run(vm, vm.loadTransactions())
        assertEquals(listOf("refund", "sale"), list.transactions.map { it.kind })

        val settled = run(vm, vm.settle()).settlement!!
        assertTrue(settled.balanced)
        assertEquals(1L, settled.debitCount)
        assertEquals(1234L, settled.debitAmount)
        assertEquals(1L, settled.creditCount)
        assertEquals(500L, settled.creditAmount)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun decline_void_and_errors_carry_the_sdk_diagnosis() {
        val vm = newVm()
        // Not signed in: the SDK refuses with its own diagnosis.
        val notSignedIn = run(vm, vm.sale(100))
        assertEquals(Screen.ERROR, notSignedIn.screen)
        assertNotNull(notSignedIn.diagnosis)
        assertTrue(notSignedIn.error!!, notSignedIn.error!!.startsWith("NotSignedIn"))

        run(vm, vm.login("01", "0000"))
        // The simulator declines amounts ending in 51: a result with a diagnosis, not an error.
        val declined = run(vm, vm.sale(2_051)).lastResult!!
        assertFalse(declined.approved)
        assertEquals("51", declined.responseCode)
        assertNotNull(declined.diagnosis)
        assertTrue(declined.diagnosis!!.titleZh.isNotEmpty())

        vm.newSale()
        val sale = run(vm, vm.sale(3_000)).lastResult!!
        val void = run(vm, vm.void(sale.reference)).lastResult!!
        assertEquals("void", void.kind)
        assertTrue(void.approved)
        val quote = run(vm, vm.quoteRefund(sale.reference)).refundQuote!!
        assertEquals("voided", quote.refusal)
        assertEquals(0L, quote.refundable)

        val missing = run(vm, vm.quoteRefund("999999999999"))
        assertEquals("sample.not_found", missing.diagnosis?.code)

        val pending = run(vm, vm.loadPending())
        assertEquals(Screen.PENDING, pending.screen)
        assertTrue(pending.pending.isEmpty())
        assertEquals(0L, run(vm, vm.recover()).recovery?.remaining)
        assertEquals(emptyList<String>(), sim.reconcile(terminal, false))
    }

    @Test
    fun sdk_events_reach_the_screens_with_the_masked_pan_only() = runBlocking {
        val seen = Collections.synchronizedList(mutableListOf<PosEvent>())
        val collector = launch(Dispatchers.IO) { gateway.events.collect { seen += it } }
        delay(200) // the listener is registered when collection starts
        gateway.login("01", "0000")
        gateway.sale(4_321, "order-events")
        val end = System.currentTimeMillis() + 5_000
        while (seen.none { it is PosEvent.CardRead } && System.currentTimeMillis() < end) delay(20)
        collector.cancelAndJoin()
        val events = synchronized(seen) { seen.toList() }
        assertTrue(events.toString(), PosEvent.PresentCard(4_321) in events)
        assertTrue(events.toString(), PosEvent.CardRead("622202*********0128") in events)
        assertTrue(events.toString(), events.any { it is PosEvent.Processing })
        assertFalse(events.toString().contains(TEST_PAN))
    }

    private companion object {
        /** The simulator's TEST card (documented test PAN, never a real card). */
        const val TEST_PAN = "6222021234567890128"
    }
}
