package com.smartpos.sdk

import com.smartpos.sdk.ffi.AmountRequest
import com.smartpos.sdk.ffi.CallbackException
import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.ReferenceRequest
import com.smartpos.sdk.ffi.SecureStore
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TxnKind
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.diagnoseResponseCode
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.util.concurrent.ConcurrentHashMap

/** A secure store written in Kotlin (in memory: for tests only). */
class MapStore(tmkHex: String?) : SecureStore {
    val values = ConcurrentHashMap<String, ByteArray>()

    init {
        if (tmkHex != null) values["tmk"] = tmkHex.chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    }

    override fun get(name: String): ByteArray? = values[name]?.copyOf()

    override fun put(name: String, value: ByteArray) {
        values[name] = value.copyOf()
    }
}

/** The simulator's documented TEST TMK (`smartpos_sim::acquirer::TEST_TMK_HEX`). */
const val TEST_TMK_HEX = "0123456789ABCDEFFEDCBA9876543210"

/** Errors reach Kotlin as the sealed SmartPosException hierarchy, never as crashes. */
class ErrorsTest {
    @Test
    fun `engine refusals map to their exception`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                val notSigned = assertThrows<SmartPosException.NotSignedIn> {
                    runBlocking { t.sale(saleOf(100)) }
                }
                assertTrue(notSigned.reason.isNotEmpty())
                // The exception carries the cashier's diagnosis, in both languages.
                val d = notSigned.diagnosis
                assertTrue(d != null && d.titleZh.isNotEmpty() && d.titleEn.isNotEmpty(), "$d")
                t.signIn("01")
                assertThrows<SmartPosException.NotFound> {
                    runBlocking { t.void(ReferenceRequest("000001999999")) }
                }
                val sale = t.sale(saleOf(1_000, "o-1"))
                // Over the original: the refund policy denies it before anything is sent.
                val over = assertThrows<SmartPosException.RefundDenied> {
                    runBlocking { t.refund(AmountRequest(sale.record.reference, 5_000u)) }
                }
                // No card data in error texts.
                assertFalse(over.message.orEmpty().contains(TEST_PAN))
                assertThrows<SmartPosException.Rejected> { CardInput.keyed("1234", "3012") }

                // A decline is a result with a diagnosis; the same text is available by code.
                val declined = t.sale(saleOf(2_051, "o-declined"))
                assertEquals(TxnState.DECLINED, declined.record.state)
                assertEquals("51", declined.diagnosis?.hostCode)
                assertEquals(declined.diagnosis?.code, diagnoseResponseCode("51", TxnKind.SALE).code)
                assertEquals(null, sale.diagnosis)
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `an unreachable host is reported, and a sale that never left is NOT_SENT`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                env.sim.stop()
                val sale = t.sale(saleOf(1_500, "o-unreachable"))
                assertEquals(TxnState.NOT_SENT, sale.record.state)
                assertFalse(sale.reversalPending)
                assertThrows<SmartPosException.HostUnreachable> { runBlocking { t.echo() } }
            }
        }
    }

    @Test
    fun `configuration and secure store problems are Config errors`() {
        Env().use { env ->
            val dir = File(env.dir, "x").path
            assertThrows<SmartPosException.Config> {
                Terminal.open(env.config(tid = "short"), dir, MapStore(TEST_TMK_HEX), null)
            }
            assertThrows<SmartPosException.Config> {
                Terminal.open(env.config().copy(dialect = "nope"), dir, MapStore(TEST_TMK_HEX), null)
            }
            assertThrows<SmartPosException.Config> {
                Terminal.open(env.config(), dir, MapStore(null), null)
            }
            val throwing = object : SecureStore {
                override fun get(name: String): ByteArray? = throw IllegalStateException("keystore locked")
                override fun put(name: String, value: ByteArray) = throw CallbackException.Failed("read-only")
            }
            val e = assertThrows<SmartPosException.Config> { Terminal.open(env.config(), dir, throwing, null) }
            assertTrue(e.reason.contains("keystore locked"), e.reason)
        }
    }

    @Test
    fun `a Kotlin secure store works and keeps the journal key across reopen`() = runBlocking {
        Env().use { env ->
            val store = MapStore(TEST_TMK_HEX)
            env.open(store = store).use { t ->
                t.signIn("01")
                t.sale(saleOf(1_111, "o-store"))
            }
            assertEquals(32, store.values["journal_key"]?.size)
            env.open(store = store).use { t ->
                assertEquals("o-store", t.journalAll().single().idempotencyKey)
            }
            // Another journal key cannot read the sealed pending messages, but the journal opens.
            val other = MapStore(TEST_TMK_HEX)
            env.open(store = other).use { t -> assertEquals(1, t.journalAll().size) }
        }
    }
}
