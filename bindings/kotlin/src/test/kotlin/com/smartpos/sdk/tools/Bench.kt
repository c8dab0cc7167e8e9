package com.smartpos.sdk.tools

import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SaleRequest
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
 * Counted crossings: exported calls and polls of async calls (Kotlin -> Rust) and foreign
 * callbacks (Rust -> Kotlin) from the counters in `smartpos-ffi`; uniffi's async protocol adds
 * three fixed crossings per async call (create, complete, free) and one continuation callback
 * per poll that returned "not ready".
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
                repeat(50) { t.sale(SaleRequest(1_000u, null, "01", CardInput.keyed("6222021234567890128", "3012"))) }
                val card = CardInput.keyed("6222021234567890128", "3012")
                resetFfiStats()
                val t0 = System.nanoTime()
                repeat(sales) { t.sale(SaleRequest(1_000u, null, "01", card)) }
                val saleNs = (System.nanoTime() - t0) / sales
                val s = ffiStats()
                println("sales: $sales over plain TCP loopback, journal on disk (synchronous=FULL)")
                println("  time per sale:            %.3f ms".format(saleNs / 1e6))
                println("  exported calls per sale:  %.2f".format(s.calls.toDouble() / sales))
                println("  async polls per sale:     %.2f".format(s.polls.toDouble() / sales))
                println("  callbacks per sale:       %.2f (listener events)".format(s.callbacks.toDouble() / sales))
                // create (= the exported call) + polls + wake-ups (polls - calls) + complete + free
                // for each async call, + callbacks.
                val crossings = (s.calls + s.polls + (s.polls - s.calls) + 2u * s.calls + s.callbacks).toDouble() / sales
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
