package com.smartpos.sdk

import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.CardReader
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SecureStore
import com.smartpos.sdk.ffi.SaleRequest
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TerminalListener
import com.smartpos.sdk.ffi.testSecureStore
import java.io.File
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap

/** The TEST card of the simulator (documented test PAN, never a real card). */
const val TEST_PAN = "6222021234567890128"

/** A keyed TEST card. */
fun testCard(): CardInput = CardInput.keyed(TEST_PAN, "3012")

/** A sale request with a keyed TEST card. */
fun saleOf(amount: Long, key: String? = null) =
    SaleRequest(amount = amount.toULong(), idempotencyKey = key, operator = "01", card = testCard())

/**
 * A host simulator on loopback (TLS with the TEST certificate) and a temporary data directory;
 * closes both.
 */
class Env(faultPlan: String? = null) : AutoCloseable {
    val sim = HostSimulator()
    val address: String = sim.start("cup", true, faultPlan)
    val dir: File = Files.createTempDirectory("smartpos-kt").toFile()

    fun config(tid: String = "10000001", responseTimeoutMs: Long = 5_000) = TerminalConfig(
        tid = tid,
        mid = "898100012340001",
        host = address,
        tls = sim.tlsConfig(),
        connectTimeoutMs = 2_000u,
        responseTimeoutMs = responseTimeoutMs.toULong(),
        utcOffsetMinutes = 480,
    )

    fun open(
        tid: String = "10000001",
        responseTimeoutMs: Long = 5_000,
        store: SecureStore = testSecureStore(),
        reader: CardReader? = null,
    ): Terminal = Terminal.open(config(tid, responseTimeoutMs), File(dir, tid).path, store, reader)

    override fun close() {
        sim.shutdown()
        sim.close()
        dir.deleteRecursively()
    }
}

/** Records events and the name of the thread each arrived on. */
class Recorder : TerminalListener {
    val events: MutableList<TerminalEvent> = Collections.synchronizedList(mutableListOf())
    val threads: MutableSet<String> = ConcurrentHashMap.newKeySet()

    override fun onEvent(event: TerminalEvent) {
        threads.add(Thread.currentThread().name)
        events.add(event)
    }

    fun snapshot(): List<TerminalEvent> = synchronized(events) { events.toList() }
}

/** Names of this process's OS threads (from /proc, so native Rust threads are included). */
fun osThreadNames(): List<String> =
    File("/proc/self/task").listFiles().orEmpty().mapNotNull {
        runCatching { File(it, "comm").readText().trim() }.getOrNull()
    }

/** OS threads whose name starts with [prefix] (Linux truncates names to 15 characters). */
fun osThreads(prefix: String): Int = osThreadNames().count { it.startsWith(prefix) }

/** Open file descriptors of this process that point into [dir]. */
fun openFilesUnder(dir: File): Int =
    File("/proc/self/fd").listFiles().orEmpty().count {
        runCatching { Files.readSymbolicLink(it.toPath()).toString() }
            .getOrDefault("")
            .startsWith(dir.canonicalPath)
    }

/** Polls [check] for up to [ms] milliseconds. */
fun eventually(ms: Long = 5_000, check: () -> Boolean): Boolean {
    val end = System.currentTimeMillis() + ms
    while (System.currentTimeMillis() < end) {
        if (check()) return true
        Thread.sleep(20)
    }
    return check()
}
