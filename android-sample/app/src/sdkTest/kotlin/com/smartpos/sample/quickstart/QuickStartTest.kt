package com.smartpos.sample.quickstart

import android.nfc.Tag
import android.nfc.tech.IsoDep
import android.os.Bundle
import com.smartpos.sample.sdk.SimulatedCardIsoDep
import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import org.robolectric.util.ReflectionHelpers
import org.robolectric.util.ReflectionHelpers.ClassParameter
import java.util.Collections

/**
 * docs/android.md's quick start ([QuickStart.kt]) run as written against the testkit's host
 * simulator (TLS, TEST keys): open and sign in with the first-login password change, a
 * contactless sale through [IsoDepTransport] over a real `IsoDep` whose card is the testkit's
 * virtual Visa card, the retry with the same order id, and the progress the screen shows.
 * Robolectric has no `AndroidKeyStore` provider, so the store here is the testkit's in-memory
 * one instead of [KeystoreSecureStore] (which the verification build compiles only).
 */
@RunWith(RobolectricTestRunner::class)
@Config(shadows = [SimulatedCardIsoDep::class])
class QuickStartTest {
    private val sim = HostSimulator()

    @After
    fun stop() {
        SimulatedCardIsoDep.card = null
        sim.shutdown()
        sim.close()
    }

    private fun isoDep(): IsoDep {
        val tag: Tag = ReflectionHelpers.callStaticMethod(
            Tag::class.java,
            "createMockTag",
            ClassParameter.from(ByteArray::class.java, byteArrayOf(0x04, 0x11, 0x22, 0x33)),
            ClassParameter.from(IntArray::class.java, intArrayOf(3)), // TagTechnology.ISO_DEP
            ClassParameter.from(Array<Bundle>::class.java, arrayOf(Bundle())),
            ClassParameter.from(java.lang.Long.TYPE, 0L),
        )
        return IsoDep.get(tag)
    }

    @Test
    fun the_quick_start_sells_once_per_order_id() = runBlocking {
        val address = sim.start("cup", true, null)
        val config = terminalConfig("10000001", "898100012340001", address, sim.tlsConfig())
        val context = RuntimeEnvironment.getApplication()
        openAndSignIn(context, config, testSecureStore(), "00", "123456", "135790").use { terminal ->
            val shown = Collections.synchronizedList(mutableListOf<String>())
            val progress = showProgress(terminal, this) { shown += it }
            yield() // the collector starts (and registers its listener) before the sale

            SimulatedCardIsoDep.card = SimulatedCard(SimCardProfile.Visa)
            val first = sell(terminal, IsoDepTransport(isoDep()), null, 1234u, "order-1001")
            assertTrue(first.toString(), first.approved)
            // The same order id again (the app did not see the answer): the recorded outcome.
            val again = sell(terminal, IsoDepTransport(isoDep()), null, 1234u, "order-1001")
            assertEquals(first.reference, again.reference)
            assertEquals(1, sim.ledger().size)

            progress.cancel()
            assertTrue(shown.toString(), "Present card" in shown && "Processing" in shown)
            assertTrue(shown.toString(), shown.any { it.startsWith("Card read: 476173") })
        }
    }
}
