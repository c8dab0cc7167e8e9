package com.smartpos.sdk

import com.smartpos.sdk.ffi.LogLevel
import com.smartpos.sdk.ffi.LogRecord
import com.smartpos.sdk.ffi.LogSink
import com.smartpos.sdk.ffi.TerminalEvent
import com.smartpos.sdk.ffi.TerminalListener
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.setLogSink
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Collections

/** Callbacks: thread, Flow, and exceptions thrown by the app's code. */
class CallbacksTest {
    @Test
    fun `events arrive on the terminal's tokio threads`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                val rec = Recorder()
                t.addListener(rec)
                t.signIn("01")
                t.sale(saleOf(1_000))
                assertTrue(rec.snapshot().any { it is TerminalEvent.Sending }, "${rec.snapshot()}")
                assertTrue(rec.threads.isNotEmpty())
                assertTrue(
                    rec.threads.all { it.startsWith("smartpos-terminal") || it.startsWith("Thread-") },
                    "${rec.threads}",
                )
                // JNA names a native thread it attaches after the thread, or "Thread-N": check the
                // OS name too, which tokio set.
                assertTrue(osThreads("smartpos-termin") >= 1)
                assertTrue(Thread.currentThread().name !in rec.threads)
            }
        }
    }

    @Test
    fun `events() is a Flow of the terminal's events`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val collected = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
                    t.events().takeWhile { it !is TerminalEvent.PendingDelivered }.toList()
                }
                val sale = t.sale(saleOf(1_000, "flow-1"))
                env.sim.dropNextAnswers(1u)
                t.sale(saleOf(2_000, "flow-2")) // times out, reversal delivered: ends the flow
                val events = collected.await()
                val sending = events.filterIsInstance<TerminalEvent.Sending>()
                assertTrue(sending.any { it.reference == sale.record.reference && it.mti == "0200" }, "$events")
                assertTrue(events.any { it is TerminalEvent.ReversalSent }, "$events")
            }
        }
    }

    @Test
    fun `exceptions in listeners and log sinks never break a payment`() = runBlocking {
        Env().use { env ->
            val lines = Collections.synchronizedList(mutableListOf<LogRecord>())
            forwardLogs(LogLevel.INFO) { lines.add(it) }
            try {
                env.open().use { t ->
                    t.addListener(object : TerminalListener {
                        override fun onEvent(event: TerminalEvent) = throw IllegalStateException("UI gone")
                    })
                    val rec = Recorder()
                    t.addListener(rec)
                    t.signIn("01")
                    val sale = t.sale(saleOf(1_000))
                    assertEquals(TxnState.APPROVED, sale.record.state)
                    assertTrue(rec.snapshot().isNotEmpty())
                }
                assertTrue(lines.any { it.level == LogLevel.WARN && it.message.contains("listener failed") }, "$lines")
                assertTrue(lines.none { it.message.contains(TEST_PAN) })
                setLogSink(object : LogSink {
                    override fun log(record: LogRecord) = throw RuntimeException("log pipe closed")
                }, LogLevel.TRACE)
                env.open(tid = "10000002").use { t ->
                    t.signIn("01")
                    assertEquals(TxnState.APPROVED, t.sale(saleOf(1_000)).record.state)
                }
            } finally {
                stopLogForwarding()
            }
        }
    }
}
