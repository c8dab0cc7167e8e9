package com.smartpos.sdk

import com.smartpos.sdk.ffi.HostSimulator
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedCard
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import com.smartpos.sdk.ffi.TxnState
import com.smartpos.sdk.ffi.loadTestDukptKey
import com.smartpos.sdk.ffi.testSecureStore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files

/**
 * The shipped key-option profiles end to end through Kotlin (issue 18): TDES DUKPT, AES DUKPT
 * and SM4 working keys, TDES working keys (the default `cup` profile), and track data encrypted
 * under the TDK, with their TEST keys, against the in-process host simulator serving the same
 * profile. A keyed sale and a PIN sale go through; a wrong PIN is declined 55 by the host,
 * which decrypts the block under the PIN key it issued or derives, and the cashier reads the
 * wrong-PIN diagnosis.
 */
class KeysTest {
    private fun profileText(name: String): String = File("../../profiles/$name.toml").readText()

    /** [profileName]: a profile under profiles/, or null for the built-in `cup` profile. */
    private fun sells(profileName: String?, dukpt: Boolean) = runBlocking {
        val profile = profileName?.let { profileText(it) }
        val name = profileName ?: "cup"
        val sim = HostSimulator()
        val dir = Files.createTempDirectory("smartpos-kt-keys").toFile()
        try {
            val address = if (profile == null) sim.start("cup", false, null) else sim.startWithProfile(profile, false, null)
            val store = testSecureStore()
            if (dukpt) loadTestDukptKey(store, requireNotNull(profile))
            val config = TerminalConfig(
                tid = "10000001",
                mid = "898100012340001",
                host = address,
                connectTimeoutMs = 2_000u,
                responseTimeoutMs = 5_000u,
                utcOffsetMinutes = 480,
                profileToml = profile,
            )
            Terminal.open(config, File(dir, "t").path, store, null).use { t ->
                t.signIn("01")
                val keyed = t.sale(saleOf(1_234, "$name-keyed"))
                assertEquals(TxnState.APPROVED, keyed.record.state, name)
                val pad = Pad("1234")
                val pin = t.saleContactless(2_000u, TapTransport(SimulatedCard(SimCardProfile.Pin)), pad, "$name-pin")
                assertEquals(TxnState.APPROVED, pin.record.state, name)
                assertEquals(1, pad.asked.size)
                val wrong = t.saleContactless(3_000u, TapTransport(SimulatedCard(SimCardProfile.Pin)), Pad("4321"), "$name-wrong")
                assertEquals(TxnState.DECLINED, wrong.record.state, name)
                assertEquals("55", wrong.record.responseCode, name)
                assertEquals("host.incorrect_pin", wrong.diagnosis?.code, name)
                val approved = sim.ledger().filter { it.status == "approved" }
                assertEquals(listOf(1_234uL, 2_000uL), approved.map { it.amount }, name)
                assertTrue(sim.reconcile(t, false).isEmpty(), name)
            }
        } finally {
            sim.shutdown()
            sim.close()
            dir.deleteRecursively()
        }
    }

    @Test
    fun `TDES DUKPT profile sells with its TEST keys`() = sells("dukpt-tdes", dukpt = true)

    @Test
    fun `AES DUKPT profile sells with its TEST keys`() = sells("dukpt-aes", dukpt = true)

    @Test
    fun `SM4 profile sells with national-algorithm keys`() = sells("unionpay-sm4", dukpt = false)

    /**
     * Tracks 35/36 travel encrypted under the TDK where a request carries them; the simulator
     * answers 30 to a clear or changed track, so a sale with a track is approved only if the
     * host decrypted it (the CLI's swipe and chip tests check the track itself).
     */
    @Test
    fun `TDES working keys (default cup profile) check the PIN`() = sells(null, dukpt = false)

    @Test
    fun `track-encrypted profile sells with its tracks under the TDK`() =
        sells("cup-track-encrypted", dukpt = false)
}
