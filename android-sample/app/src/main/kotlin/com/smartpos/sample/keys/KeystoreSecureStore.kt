package com.smartpos.sample.keys

import android.content.SharedPreferences
import android.util.Base64
import java.io.IOException
import java.security.GeneralSecurityException

/**
 * The terminal's secrets (the SDK asks for `tmk` and `journal_key`) wrapped by a [KeyWrapper]
 * (Android Keystore on a device) and stored as Base64 in [prefs]. The SDK bridge hands it to the
 * core as its `SecureStore`; the clear values exist only briefly on the way into Rust.
 */
class KeystoreSecureStore(
    private val prefs: SharedPreferences,
    private val wrapper: KeyWrapper,
) {
    /** The secret [name], or null when never stored. @throws SecureStoreException when unreadable. */
    fun get(name: String): ByteArray? {
        val stored = prefs.getString(PREFIX + name, null) ?: return null
        return try {
            wrapper.unwrap(name, Base64.decode(stored, Base64.NO_WRAP))
        } catch (e: GeneralSecurityException) {
            throw SecureStoreException("secret '$name' cannot be unwrapped", e)
        } catch (e: IllegalArgumentException) {
            throw SecureStoreException("secret '$name' is not valid Base64", e)
        }
    }

    /** Stores [value] under [name], durably (`commit`, not `apply`: the journal key is written once). */
    fun put(name: String, value: ByteArray) {
        val blob = try {
            wrapper.wrap(name, value)
        } catch (e: GeneralSecurityException) {
            throw SecureStoreException("secret '$name' cannot be wrapped", e)
        }
        if (!prefs.edit().putString(PREFIX + name, Base64.encodeToString(blob, Base64.NO_WRAP)).commit()) {
            throw SecureStoreException("secret '$name' could not be written", null)
        }
    }

    private companion object {
        const val PREFIX = "secret."
    }
}

/** A secret could not be read or written; the message names the secret, never its value. */
class SecureStoreException(message: String, cause: Throwable?) : IOException(message, cause)
