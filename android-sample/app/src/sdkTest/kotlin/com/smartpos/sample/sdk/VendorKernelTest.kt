package com.smartpos.sample.sdk

import com.smartpos.sdk.ffi.CardDecision
import com.smartpos.sdk.ffi.CardKernelException
import com.smartpos.sdk.ffi.CryptogramType
import com.smartpos.sdk.ffi.HostAnswer
import com.smartpos.sdk.ffi.KernelCard
import com.smartpos.sdk.ffi.KernelRequest
import com.smartpos.sample.sdk.VendorKernel.OnlineStatus
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** The vendor adapter's own parts: the host answer for the kernel, 9F27, and the callback bridge. */
class VendorKernelTest {
    private fun answer(
        online: Boolean = true,
        code: String = "00",
        approved: Boolean = true,
        authCode: String? = "123456",
        iad: ByteArray? = null,
        scripts: List<ByteArray> = emptyList(),
    ) = HostAnswer(online, code, approved, authCode, iad, scripts)

    @Test
    fun the_host_answer_becomes_the_kernel_s_online_result_tags() {
        val iad = byteArrayOf(0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88.toByte(), 0x30, 0x30)
        val script71 = byteArrayOf(0x71, 0x07, 0x9F.toByte(), 0x18, 0x04, 1, 2, 3, 4)
        val long72 = byteArrayOf(0x72, 0x81.toByte(), 0x03, 0x86.toByte(), 0x01, 0x00)
        val approved = VendorKernel.onlineResult(answer(iad = iad, scripts = listOf(script71, long72)))
        assertEquals(OnlineStatus.APPROVED, approved.status)
        assertEquals(listOf("8A", "89", "91", "71", "72"), approved.tags)
        assertEquals(
            listOf("3030", "313233343536", "11223344556677883030", "9F180401020304", "860100"),
            approved.values,
        )

        // A decline still tells the card the response code; no auth code, no 91.
        val declined = VendorKernel.onlineResult(answer(code = "05", approved = false, authCode = null))
        assertEquals(OnlineStatus.DECLINED, declined.status)
        assertEquals(listOf("8A") to listOf("3035"), declined.tags to declined.values)

        // No answer from the host: "unable to go online", nothing else.
        val offline = VendorKernel.onlineResult(answer(online = false, code = "", approved = false, authCode = null))
        assertEquals(VendorKernel.OnlineResult(OnlineStatus.UNABLE_TO_GO_ONLINE, emptyList(), emptyList()), offline)
    }

    @Test
    fun a_script_that_is_not_a_well_formed_71_or_72_template_is_left_out() {
        val bad = listOf(
            byteArrayOf(0x71),                                 // no length
            byteArrayOf(0x71, 0x05, 1, 2),                     // shorter than it says
            byteArrayOf(0x71, 0x01, 1, 2),                     // longer than it says
            byteArrayOf(0x86.toByte(), 0x01, 0x00),            // not a script template
            byteArrayOf(0x72, 0x83.toByte(), 0, 0, 1, 0),      // a length form no script uses
        )
        val r = VendorKernel.onlineResult(answer(authCode = null, scripts = bad + listOf(byteArrayOf(0x72, 0x00))))
        assertEquals(listOf("8A", "72"), r.tags)
        assertEquals(listOf("3030", ""), r.values)
    }

    @Test
    fun the_cryptogram_information_data_gives_the_card_s_decision() {
        assertEquals(CryptogramType.TC, VendorKernel.cryptogramTypeOf(0x40))
        assertEquals(CryptogramType.TC, VendorKernel.cryptogramTypeOf(0x41))
        assertEquals(CryptogramType.AAC, VendorKernel.cryptogramTypeOf(0x00))
        assertEquals(CryptogramType.ARQC, VendorKernel.cryptogramTypeOf(0x80))
        // Reserved (11): never an approval.
        assertEquals(CryptogramType.AAC, VendorKernel.cryptogramTypeOf(0xC0))
    }

    /** A kernel whose vendor answers a read later, on another thread, or never. */
    private class Callbacks(stepTimeoutMs: Long) : VendorKernel(stepTimeoutMs) {
        val started = CompletableFuture<VendorReply<KernelCard>>()
        val ended = AtomicInteger()

        override fun isReady() = true

        override fun readCard(request: KernelRequest): KernelCard = awaitVendor { started.complete(it) }

        val completing = CompletableFuture<VendorReply<CardDecision>>()

        override fun completeCard(answer: HostAnswer): CardDecision = awaitVendor { completing.complete(it) }

        override fun endTransaction() {
            ended.incrementAndGet()
        }
    }

    private fun request() = KernelRequest(0u, 100u, 0u, 156u, 156u, "250101", "101010", byteArrayOf(1, 2, 3, 4), emptyList(), emptyList())

    private fun reading(k: Callbacks): CompletableFuture<Any> =
        CompletableFuture.supplyAsync { runCatching { k.read(request()) }.let { it.exceptionOrNull() ?: it.getOrNull()!! } }

    @Test
    fun a_vendor_failure_reaches_the_sdk_as_the_kernel_s_error() {
        val k = Callbacks(5_000)
        val read = reading(k)
        val reply = k.started.get(5, TimeUnit.SECONDS)
        // The vendor's listener reports an error on its own thread.
        Thread { reply.fail(CardKernelException.Kernel(-4001, "read card failed")) }.start()
        val thrown = read.get(5, TimeUnit.SECONDS)
        assertTrue("$thrown", thrown is CardKernelException.Kernel && thrown.code == -4001)
        assertFalse("a late answer is ignored", reply.fail(CardKernelException.Timeout()))
        assertFalse("no step waits: nothing to cancel", k.cancel())
    }

    @Test
    fun the_cashier_s_cancel_ends_a_waiting_read_and_the_vendor_s_transaction() {
        val k = Callbacks(5_000)
        val read = reading(k)
        val reply = k.started.get(5, TimeUnit.SECONDS)
        assertTrue(k.cancel())
        val thrown = read.get(5, TimeUnit.SECONDS)
        assertTrue("$thrown", thrown is CardKernelException.Aborted)
        assertEquals(1, k.ended.get())
        assertFalse("the card that comes afterwards is not taken", reply.fail(CardKernelException.CardRemoved()))
        // The SDK's abort ends the vendor's transaction too (harmless when nothing runs).
        k.abort()
        assertEquals(2, k.ended.get())
    }

    @Test
    fun the_cashier_s_cancel_never_stops_a_card_that_is_completing() {
        val k = Callbacks(5_000)
        val decision = CardDecision(CryptogramType.TC, byteArrayOf(1, 2, 3, 4, 5, 6, 7, 8), byteArrayOf(0x9F.toByte(), 0x27, 0x01, 0x40))
        val completed = CompletableFuture.supplyAsync { runCatching { k.complete(answer()) } }
        val reply = k.completing.get(5, TimeUnit.SECONDS)
        // The host approved: a late Cancel must not turn the card's decision into a reversal.
        assertFalse(k.cancel())
        assertTrue(reply.ok(decision))
        assertEquals(decision, completed.get(5, TimeUnit.SECONDS).getOrThrow())
        assertEquals(0, k.ended.get())
    }

    @Test
    fun no_card_in_time_is_a_timeout_and_the_vendor_stops_looking() {
        val k = Callbacks(200)
        try {
            k.read(request())
            fail("no card came")
        } catch (e: CardKernelException.Timeout) {
            assertEquals(1, k.ended.get())
        }
        assertFalse("the late listener is ignored", k.started.get(1, TimeUnit.SECONDS).fail(CardKernelException.CardRemoved()))
    }
}
