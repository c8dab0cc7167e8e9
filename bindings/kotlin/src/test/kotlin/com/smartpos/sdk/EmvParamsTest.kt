package com.smartpos.sdk

import com.smartpos.sdk.ffi.EmvParams
import com.smartpos.sdk.ffi.SmartPosException
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The acquirer's EMV parameters from Kotlin: downloaded, kept, set by the app, handed out as records. */
class EmvParamsTest {
    private fun hex(b: ByteArray) = b.joinToString("") { "%02X".format(it) }

    private fun hexOrNull(b: ByteArray?) = b?.let { hex(it) }

    /** What the test compares (a data class holding ByteArrays compares them by reference). */
    private fun fingerprint(p: EmvParams?) = p?.let {
        it.aids.map { a -> listOf(hex(a.aid), a.asi, hexOrNull(a.tacDefault), a.contactlessTxnLimit, a.contactlessCvmLimit) } +
            it.caKeys.map { k -> listOf(hex(k.rid), k.index, k.expiry, hex(k.modulus), hex(k.exponent), hexOrNull(k.checksum)) }
    }

    @Test
    fun `parameters are downloaded, kept across a reopen, and set by the app`(): Unit = runBlocking {
        Env().use { env ->
            env.open().use { t ->
                assertNull(t.emvParams())
                assertNull(t.emvParamRecords())
                val got = t.downloadEmvParams()
                assertEquals(4, got.aids.size)
                assertEquals(2, got.caKeys.size)
                val unionpay = got.aids.first { hex(it.aid) == "A000000333010101" }
                assertEquals(100_000uL, unionpay.contactlessCvmLimit)
                assertEquals(fingerprint(got), fingerprint(t.emvParams()))
                // The records a device kernel loads: one TLV per AID and per key, 9F06 first.
                val records = requireNotNull(t.emvParamRecords())
                assertEquals(4, records.aids.size)
                assertEquals(2, records.caKeys.size)
                assertTrue(records.aids.all { hex(it).startsWith("9F06") })
            }
            env.open().use { t ->
                val kept = requireNotNull(t.emvParams())
                assertEquals(4, kept.aids.size)
                // The app sets its own (a lower CVM limit for UnionPay), audited and kept.
                val mine = kept.copy(
                    aids = kept.aids.map {
                        if (hex(it.aid) == "A000000333010101") it.copy(contactlessCvmLimit = 30_000uL) else it
                    },
                )
                t.setEmvParams(mine)
                assertEquals(fingerprint(mine), fingerprint(t.emvParams()))
                // A CA key whose checksum does not match is refused, and nothing changes.
                val key = mine.caKeys[0]
                val bad = mine.copy(caKeys = listOf(key.copy(checksum = ByteArray(20))) + mine.caKeys.drop(1))
                assertThrows<SmartPosException> { t.setEmvParams(bad) }
                assertEquals(fingerprint(mine), fingerprint(t.emvParams()))
            }
        }
    }
}
