package com.smartpos.sample.keys

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** Encrypts small secrets (the TMK, the journal key) for storage outside the keystore. */
interface KeyWrapper {
    /** Wraps [plain], binding it to [label] (a different label cannot unwrap it). */
    fun wrap(label: String, plain: ByteArray): ByteArray

    /** Unwraps a blob from [wrap]. @throws GeneralSecurityException when tampered or wrong label. */
    fun unwrap(label: String, blob: ByteArray): ByteArray
}

/**
 * AES-256-GCM wrapping with a key that [keyProvider] supplies: on a device the key lives in the
 * Android Keystore ([AndroidKeystoreKeys]) and never leaves it; in JVM tests (Robolectric has no
 * `AndroidKeyStore` provider) a software key goes through exactly this code.
 *
 * Blob layout: version (1 byte, 1) | IV length (1 byte) | IV | ciphertext with 16-byte tag.
 * The label is the GCM additional data.
 */
class AesGcmKeyWrapper(private val keyProvider: () -> SecretKey) : KeyWrapper {
    override fun wrap(label: String, plain: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        // No IV passed: keystore keys require a random IV chosen by the keystore itself.
        cipher.init(Cipher.ENCRYPT_MODE, keyProvider())
        cipher.updateAAD(label.toByteArray(Charsets.UTF_8))
        val iv = cipher.iv
        val body = cipher.doFinal(plain)
        return byteArrayOf(VERSION, iv.size.toByte()) + iv + body
    }

    override fun unwrap(label: String, blob: ByteArray): ByteArray {
        if (blob.size < 2 || blob[0] != VERSION) throw GeneralSecurityException("unknown blob format")
        val ivLen = blob[1].toInt() and 0xFF
        if (ivLen !in 12..16 || blob.size < 2 + ivLen + TAG_BYTES) throw GeneralSecurityException("truncated blob")
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, keyProvider(), GCMParameterSpec(TAG_BYTES * 8, blob, 2, ivLen))
        cipher.updateAAD(label.toByteArray(Charsets.UTF_8))
        return cipher.doFinal(blob, 2 + ivLen, blob.size - 2 - ivLen)
    }

    private companion object {
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val VERSION: Byte = 1
        const val TAG_BYTES = 16
    }
}

/** The app's wrapping key in the Android Keystore (created on first use, never exported). */
object AndroidKeystoreKeys {
    /** Keystore provider and type name. */
    const val PROVIDER: String = "AndroidKeyStore"

    /** Returns the AES-256-GCM key [alias], creating it on first use. */
    fun getOrCreate(alias: String = "smartpos.wrap"): SecretKey {
        val ks = KeyStore.getInstance(PROVIDER).apply { load(null) }
        (ks.getKey(alias, null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER)
        gen.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .setRandomizedEncryptionRequired(true)
                .build(),
        )
        return gen.generateKey()
    }
}
