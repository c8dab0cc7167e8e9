package com.smartpos.sdk

import com.smartpos.sdk.ffi.MposReader
import com.smartpos.sdk.ffi.ReaderLink
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.SimulatedReader
import com.smartpos.sdk.ffi.SmartPosException
import com.smartpos.sdk.ffi.TxnState
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.util.concurrent.atomic.AtomicInteger

/** The app's BLE write direction, relayed to a simulated reader. */
class RelayLink : ReaderLink {
    @Volatile var reader: SimulatedReader? = null
    val writes = AtomicInteger()

    override fun write(chunk: ByteArray) {
        writes.incrementAndGet()
        reader?.write(chunk)
    }
}

/** The mPOS reader path: Kotlin ReaderLink out, ChunkSender in, a sale through the reader. */
class ReaderTest {
    private fun reader(profile: SimCardProfile, lossPercent: Int): Pair<MposReader, SimulatedReader> {
        val link = RelayLink()
        val mpos = MposReader(link, 23u.toUShort())
        val sim = SimulatedReader(profile, mpos.chunkSender(), lossPercent.toUByte())
        link.reader = sim
        return mpos to sim
    }

    @Test
    fun `a contactless sale through a lossy Bluetooth reader`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                for (loss in listOf(0, 10)) {
                    val (mpos, sim) = reader(SimCardProfile.Visa, loss)
                    mpos.use {
                        sim.use {
                            assertEquals("SIM-RDR 1.4.2", mpos.firmwareVersion())
                            assertTrue(mpos.batteryLevel().toInt() in 0..100)
                            mpos.displayText("PRESENT CARD")
                            assertTrue(mpos.waitForCard(3_000u))
                            val r = t.saleContactless(1_200u, mpos.transport(), null, "ble-$loss")
                            assertEquals(TxnState.APPROVED, r.record.state, "loss $loss%")
                            // No PIN block: 072 (issue 20; 071 before).
                            assertEquals("072", r.record.entryMode)
                            assertEquals(SimulatedCard(SimCardProfile.Visa).panMasked(), r.record.panMasked)
                        }
                    }
                }
                assertEquals(emptyList<String>(), env.sim.reconcile(t, false))
            }
        }
    }

    @Test
    fun `a silent reader fails the card read and sends nothing`() = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                t.signIn("01")
                val (mpos, sim) = reader(SimCardProfile.Visa, 0)
                sim.stop()
                mpos.use {
                    assertThrows<SmartPosException.CardReadFailed> {
                        runBlocking { t.saleContactless(700u, mpos.transport(), null, "silent") }
                    }
                }
                assertEquals(0, env.sim.ledger().size)
            }
        }
    }
}
