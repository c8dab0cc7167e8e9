package com.smartpos.sdk

import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Several terminals in one JVM, and closing releases threads and files. */
class LifecycleTest {
    @Test
    fun `two terminals in one JVM run at the same time`() = runBlocking {
        Env().use { env ->
            env.open(tid = "10000001").use { a ->
                env.open(tid = "10000002").use { b ->
                    a.signIn("01")
                    b.signIn("02")
                    val results = listOf(a, b).flatMap { t ->
                        (1..3).map { i -> async(Dispatchers.Default) { t.sale(saleOf(1_000L + i)) } }
                    }.awaitAll()
                    assertTrue(results.all { it.record.state == TxnState.APPROVED })
                    assertEquals(3, a.journalAll().size)
                    assertEquals(3, b.journalAll().size)
                    assertEquals(emptyList<String>(), env.sim.reconcile(a, false))
                    assertEquals(emptyList<String>(), env.sim.reconcile(b, false))
                    assertEquals(setOf("10000001", "10000002"), env.sim.ledger().map { it.tid }.toSet())
                }
            }
        }
    }

    @Test
    fun `a second terminal on the same data directory is refused until the first is closed`() {
        Env().use { env ->
            env.open(tid = "10000001").use {
                val e = assertThrows<SmartPosException.Journal> { env.open(tid = "10000001") }
                assertTrue(e.reason.contains("already open"), e.reason)
                assertEquals("terminal.software_fault", e.diagnosis?.code)
            }
            // Closed: the journal is free again.
            env.open(tid = "10000001").close()
        }
    }

    @Test
    fun `close releases threads and files`() = runBlocking {
        val baseTerminal = osThreads("smartpos-termin")
        val baseSim = osThreads("smartpos-sim")
        Env().use { env ->
            // A new thread sets its OS name itself, just after it starts: poll briefly.
            assertTrue(eventually { osThreads("smartpos-sim") == baseSim + 1 }, "${osThreadNames()}")
            val t = env.open()
            assertTrue(eventually { osThreads("smartpos-termin") == baseTerminal + 1 }, "${osThreadNames()}")
            t.signIn("01")
            t.sale(saleOf(1_000))
            assertTrue(openFilesUnder(env.dir) > 0)
            t.close() // AutoCloseable: drops the Rust object, which shuts everything down
            assertTrue(eventually { osThreads("smartpos-termin") == baseTerminal }, "${osThreadNames()}")
            assertEquals(0, openFilesUnder(env.dir))
        }
        assertTrue(eventually { osThreads("smartpos-sim") == baseSim }, "${osThreadNames()}")
    }

    @Test
    fun `shutdown is explicit and later calls fail with Closed`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                t.shutdown()
                assertTrue(t.isClosed())
                assertThrows<SmartPosException.Closed> { runBlocking { t.sale(saleOf(100)) } }
                assertThrows<SmartPosException.Closed> { t.journalAll() }
                t.shutdown() // idempotent
                assertEquals(0, openFilesUnder(env.dir))
            }
        }
    }

    @Test
    fun `a simulator can be stopped and started again`() {
        HostSimulator().use { sim ->
            val a = sim.start("iso87b", false, null)
            assertEquals(a, sim.address())
            sim.stop()
            assertEquals(null, sim.address())
            assertThrows<SmartPosException.Config> { sim.start("cup", false, "nonsense:2") }
            sim.start("cup", false, "delay:10ms:0.5")
            sim.shutdown()
        }
    }
}
