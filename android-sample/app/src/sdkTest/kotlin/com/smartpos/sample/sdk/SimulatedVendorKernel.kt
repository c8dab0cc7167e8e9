package com.smartpos.sample.sdk

import com.smartpos.sdk.ffi.CardDecision
import com.smartpos.sdk.ffi.CardKernelException
import com.smartpos.sdk.ffi.HostAnswer
import com.smartpos.sdk.ffi.KernelCard
import com.smartpos.sdk.ffi.KernelRequest
import com.smartpos.sdk.ffi.SimulatedKernel
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger

/**
 * The [VendorKernel] slot filled with the test kit's [SimulatedKernel] instead of Sunmi PayLib
 * or PAX. Like a vendor SDK it answers on its own thread (a binder thread on a device), so the
 * sale goes through [VendorKernel.awaitVendor] as a real adapter's would; the SDK's calls are
 * counted. [hold] keeps the card away: a read then waits until the cashier cancels.
 */
class SimulatedVendorKernel(
    val sim: SimulatedKernel,
    @Volatile var ready: Boolean = true,
    @Volatile var hold: Boolean = false,
) : VendorKernel(stepTimeoutMs = 10_000) {
    private val inner = sim.asKernel()
    private val vendorThread: ExecutorService = Executors.newSingleThreadExecutor { r ->
        Thread(r, "vendor-kernel").apply { isDaemon = true }
    }

    /** The SDK's calls of [read], [complete], and the transactions ended ([endTransaction]). */
    val reads = AtomicInteger()
    val completions = AtomicInteger()
    val ended = AtomicInteger()

    /** Reads started and still waiting for the vendor (for a test to cancel). */
    val waiting = AtomicInteger()

    override fun isReady(): Boolean = ready

    override fun readCard(request: KernelRequest): KernelCard {
        reads.incrementAndGet()
        waiting.incrementAndGet()
        try {
            return awaitVendor { reply ->
                // A held card never comes: only cancel() (or the step timeout) ends the read.
                if (!hold) vendorThread.execute { answer(reply) { inner.read(request) } }
            }
        } finally {
            waiting.decrementAndGet()
        }
    }

    override fun completeCard(answer: HostAnswer): CardDecision {
        completions.incrementAndGet()
        return awaitVendor { reply -> vendorThread.execute { answer(reply) { inner.complete(answer) } } }
    }

    override fun endTransaction() {
        ended.incrementAndGet()
        inner.abort()
    }

    private fun <T> answer(reply: VendorReply<T>, call: () -> T) {
        try {
            reply.ok(call())
        } catch (e: CardKernelException) {
            reply.fail(e)
        }
    }
}
