package com.smartpos.sdk

import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.resetJournal
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File

/**
 * The journal guard through the bindings: a journal that storage emptied is refused on open (with
 * a diagnosis for the cashier, the file left as it is), and only the support call
 * `resetJournal` starts a new one, whose STAN continues above everything sent before.
 */
class JournalGuardTest {
    @Test
    fun `an emptied journal is refused and support can reset it`() = runBlocking {
        Env().use { env ->
            val store = testSecureStore() // one store for the terminal's whole life
            val data = File(env.dir, "10000001")
            val firstStan = env.open(store = store).use { t ->
                t.signIn("01")
                val r = t.sale(saleOf(1_000))
                assertEquals(TxnState.APPROVED, r.record.state)
                r.record.stan
            }
            val journal = File(data, "journal.db")
            File(data, "journal.db-wal").delete()
            File(data, "journal.db-shm").delete()
            journal.writeBytes(ByteArray(0))

            val refused = assertThrows<SmartPosException.JournalRefused> { env.open(store = store) }
            val d = requireNotNull(refused.diagnosis) { "JournalRefused without a diagnosis" }
            assertTrue(d.code.startsWith("terminal.journal"), d.code)
            assertTrue(d.titleZh.isNotBlank() && d.titleEn.isNotBlank())
            assertEquals(0L, journal.length(), "the refused journal is left as it was")

            val report = resetJournal(data.path, store)
            assertTrue(report.moved.any { it.contains("journal.db.lost-") }, "${report.moved}")
            assertEquals(1u, report.generation)
            env.open(store = store).use { t ->
                t.signIn("01")
                val r = t.sale(saleOf(2_000))
                assertEquals(TxnState.APPROVED, r.record.state)
                assertTrue(r.record.stan > firstStan, "STAN ${r.record.stan} after $firstStan")
                assertTrue(r.record.stan > report.stan, "STAN ${r.record.stan} after the reset's ${report.stan}")
                // The first sale lives only in the moved-aside journal now: reconciliation shows
                // it, which is what support works from.
                val diffs = env.sim.reconcile(t, false)
                assertEquals(1, diffs.size, "$diffs")
            }
        }
    }
}
