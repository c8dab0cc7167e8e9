package com.smartpos.sample.keys

import android.content.Context
import org.robolectric.RuntimeEnvironment
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import javax.crypto.KeyGenerator

/**
 * Robolectric has no `AndroidKeyStore` provider, so the wrapping key here is a software AES-256
 * key; [AesGcmKeyWrapper] and [KeystoreSecureStore] run unchanged. What is NOT verified here is
 * [AndroidKeystoreKeys] itself (key generation inside the keystore).
 */
@RunWith(RobolectricTestRunner::class)
class KeystoreSecureStoreTest {
    private val context: Context = RuntimeEnvironment.getApplication()
    private val key = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    private val prefs = context.getSharedPreferences("secrets-test", Context.MODE_PRIVATE)
    private val store = KeystoreSecureStore(prefs, AesGcmKeyWrapper { key })
    private val tmk = ByteArray(16) { (0x11 * (it % 15 + 1)).toByte() }

    @Test
    fun tmk_round_trips_and_is_not_stored_in_clear() {
        assertNull(store.get("tmk"))
        store.put("tmk", tmk)
        assertArrayEquals(tmk, store.get("tmk"))
        val stored = prefs.all.values.joinToString()
        assertFalse(stored.contains(android.util.Base64.encodeToString(tmk, android.util.Base64.NO_WRAP)))
        // Same value, fresh IV: the blob differs each time.
        val first = prefs.getString("secret.tmk", null)
        store.put("tmk", tmk)
        assertFalse(first == prefs.getString("secret.tmk", null))
    }

    @Test
    fun a_blob_moved_to_another_name_does_not_unwrap() {
        store.put("tmk", tmk)
        prefs.edit().putString("secret.journal_key", prefs.getString("secret.tmk", null)).commit()
        try {
            store.get("journal_key")
            fail("the label is authenticated")
        } catch (e: SecureStoreException) {
            assertTrue(e.message!!.contains("journal_key"))
        }
    }

    @Test
    fun tampered_or_truncated_blobs_fail_without_showing_the_value() {
        store.put("journal_key", tmk)
        val good = android.util.Base64.decode(prefs.getString("secret.journal_key", null), android.util.Base64.NO_WRAP)
        val cases = listOf(
            good.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() },
            good.copyOf(10),
            byteArrayOf(),
            byteArrayOf(9, 12),
        )
        for (bad in cases) {
            prefs.edit().putString("secret.journal_key", android.util.Base64.encodeToString(bad, android.util.Base64.NO_WRAP)).commit()
            try {
                store.get("journal_key")
                fail("tampered blob accepted")
            } catch (e: SecureStoreException) {
                assertFalse(e.toString().contains("11"))
            }
        }
        prefs.edit().putString("secret.journal_key", "%%%not base64").commit()
        try {
            store.get("journal_key")
            fail("garbage accepted")
        } catch (_: SecureStoreException) {
        }
    }
}
