package com.smartpos.sdk.tools

import com.smartpos.sdk.TapTransport
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TerminalListener
import com.smartpos.sdk.ffi.ffiStats
import com.smartpos.sdk.ffi.resetFfiStats
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import java.nio.file.Files

/**
 * Benchmark (not a test): FFI crossings per sale and the cost of a call through the bindings.
 * Run with `scripts/kotlin.sh bench [sales] [calls]` (release build of the native library).
 *
 * The sale is item 2's: a contactless sale (`saleContactless`) with a virtual card that answers
 * at once, against the host simulator on loopback, with a listener registered as an app would.
 *
 * Counted crossings: exported calls and polls of async calls (Kotlin -> Rust) and foreign
 * callbacks (Rust -> Kotlin) from the counters in `smartpos-ffi`; uniffi's async protocol adds
 * three fixed crossings per async call (create, complete, free) and one continuation callback
 * per poll that returned "not ready". The APDU exchanges are counted apart (the target
 * is the crossings besides them): each is one callback to the app's transport and, here only,
 * one call into the virtual card, which on a device is the NFC controller.
 */
fun main() {
    // System properties, not program arguments: `exec.args` would also reach the cargo step.
    val sales = System.getProperty("bench.sales")?.toInt() ?: 300
    val syncCalls = System.getProperty("bench.calls")?.toInt() ?: 100_000
    val dir = Files.createTempDirectory("smartpos-bench").toFile()
    HostSimulator().use { sim ->
        val address = sim.start("cup", false, null)
        val cfg = TerminalConfig(tid = "10000001", mid = "898100012340001", host = address)
        Terminal.open(cfg, dir.path, testSecureStore(), null).use { t ->
            t.addListener(object : TerminalListener {
                override fun onEvent(event: TerminalEvent) {}
            })
            runBlocking {
                t.signIn("01")
                val tap = TapTransport(SimulatedCard(SimCardProfile.UnionPay))
                repeat(50) { t.saleContactless(1_000u, tap, null, null, "01") }
                resetFfiStats()
                tap.apdus.set(0)
                val t0 = System.nanoTime()
                repeat(sales) { t.saleContactless(1_000u, tap, null, null, "01") }
                val saleNs = (System.nanoTime() - t0) / sales
                val s = ffiStats()
                val apdus = tap.apdus.get().toULong()
                // Without the APDU exchanges: each is one transport callback and one call of the
                // virtual card.
                val calls = s.calls - apdus
                val callbacks = s.callbacks - apdus
                println("sales: $sales contactless over plain TCP loopback, journal on disk (synchronous=FULL)")
                println("  time per sale:            %.3f ms".format(saleNs / 1e6))
                println("  APDU exchanges per sale:  %.2f (not counted below)".format(apdus.toDouble() / sales))
                println("  exported calls per sale:  %.2f".format(calls.toDouble() / sales))
                println("  async polls per sale:     %.2f".format(s.polls.toDouble() / sales))
                println("  callbacks per sale:       %.2f (listener events)".format(callbacks.toDouble() / sales))
                // create (= the exported call) + polls + wake-ups (polls - calls) + complete + free
                // for each async call, + callbacks.
                val crossings = (calls + s.polls + (s.polls - calls) + 2u * calls + callbacks).toDouble() / sales
                println("  total crossings per sale: %.2f (incl. uniffi create/complete/free and wake-ups)".format(crossings))

                repeat(10_000) { ffiStats() }
                val t1 = System.nanoTime()
                repeat(syncCalls) { ffiStats() }
                println("  sync call (ffiStats, returns a record):   %.2f us".format((System.nanoTime() - t1) / syncCalls / 1e3))
                repeat(10_000) { t.isSignedIn() }
                val t2 = System.nanoTime()
                repeat(syncCalls) { t.isSignedIn() }
                println("  sync method (isSignedIn, locks terminal): %.2f us".format((System.nanoTime() - t2) / syncCalls / 1e3))
                val asyncCalls = syncCalls / 10
                repeat(1_000) { t.recover() }
                val t3 = System.nanoTime()
                repeat(asyncCalls) { t.recover() }
                println("  async method (recover, nothing pending):  %.2f us".format((System.nanoTime() - t3) / asyncCalls / 1e3))
            }
        }
    }
    dir.deleteRecursively()
}
