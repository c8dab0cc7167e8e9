package com.smartpos.sample.sdk

import android.os.Build
import android.security.keystore.KeyProperties
import android.security.keystore.KeyProtection
import com.smartpos.sdk.ffi.DataMode
import com.smartpos.sdk.ffi.KeyAlgorithm
import com.smartpos.sdk.ffi.KeyDelivery
import com.smartpos.sdk.ffi.KeyRef
import com.smartpos.sdk.ffi.KeyRole
import com.smartpos.sdk.ffi.MacDirection
import com.smartpos.sdk.ffi.MacMethod
import com.smartpos.sdk.ffi.ModuleKind
import com.smartpos.sdk.ffi.PinBlock
import com.smartpos.sdk.ffi.PinFormat
import com.smartpos.sdk.ffi.PinPadRequest
import com.smartpos.sdk.ffi.SecurityModule
import com.smartpos.sdk.ffi.SecurityModuleException
import java.security.GeneralSecurityException
import java.security.KeyStore
import java.security.MessageDigest
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.IvParameterSpec
import javax.crypto.spec.SecretKeySpec

/**
 * Where [KeystoreSecurityModule] keeps its keys, by alias. On a device: [AndroidKeystoreVault]
 * (the keys never leave the Android Keystore; on most phones it is backed by the TEE or
 * StrongBox). In JVM tests: a JCE key map (Robolectric has no `AndroidKeyStore` provider), so
 * the module's code runs unchanged.
 */
interface KeyVault {
    /** Stores a 24-byte TDES (DESede) key under [alias], replacing what was there. The caller wipes [key] afterwards. */
    fun put(alias: String, key: ByteArray)

    /** The key under [alias], or null. */
    fun get(alias: String): SecretKey?
}

/**
 * [KeyVault] over the Android Keystore: each key is imported as a non-exportable DESede key
 * for ECB and CBC without padding (the Keystore supports TDES from Android 9, API 28).
 */
class AndroidKeystoreVault : KeyVault {
    private val keyStore: KeyStore by lazy { KeyStore.getInstance(PROVIDER).apply { load(null) } }

    override fun put(alias: String, key: ByteArray) {
        if (Build.VERSION.SDK_INT < 28) {
            throw SecurityModuleException.Unsupported("TDES keys in the Android Keystore need Android 9 (API 28)")
        }
        val protection = KeyProtection.Builder(KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_ECB, KeyProperties.BLOCK_MODE_CBC)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setRandomizedEncryptionRequired(false)
            .build()
        keyStore.setEntry(PREFIX + alias, KeyStore.SecretKeyEntry(SecretKeySpec(key, "DESede")), protection)
    }

    override fun get(alias: String): SecretKey? = keyStore.getKey(PREFIX + alias, null) as? SecretKey

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val PREFIX = "smartpos.secmod."
    }
}

/**
 * The SDK's `SecurityModule` for a terminal without a security processor (a phone as mPOS, a
 * tablet), with every key in a [KeyVault] (the Android Keystore on a device) instead of the
 * SDK's memory: open the terminal with `Terminal.openWithSecurityModule(..., module)`.
 *
 * - The master key is put into the vault once, at provisioning ([provisionMasterKey]); the
 *   SDK's store then holds no `tmk`.
 * - Sign-in keys arrive as ciphertext under it ([installWorkingKeys]): decrypted with the
 *   vault's master key, checked against their check values (all of them, before any is
 *   stored), then imported into the vault. This is the software case: the clear working key
 *   exists in this process for the time of that call. A device's PED never shows it
 *   ([VendorPedModule]).
 * - MACs (UnionPay ECB MAC, ANSI X9.19, X9.9) and the data key's encryption are computed by the
 *   vault's ciphers.
 * - The PIN: [pinPad] asks the cardholder (the app's own PIN screen); the digits become an ISO
 *   9564 format 0 block under the vault's PIN key and are wiped. Other formats, AES/SM4 keys and
 *   DUKPT are not done here (`SecurityModuleException.Unsupported` / `NoDukptKey`): use the
 *   SDK's software module or the device's PED for those.
 *
 * The MAC and PIN block constructions repeat the core's for the Keystore's ciphers; the
 * sample's tests check them against the SDK's own software module for the same keys.
 */
class KeystoreSecurityModule(
    private val vault: KeyVault,
    private val pinPad: (PinPadRequest) -> CharArray?,
) : SecurityModule {
    /** Puts the terminal master key (16 or 24 bytes) into the vault at [index]; wipe your copy afterwards. */
    fun provisionMasterKey(tmk: ByteArray, index: UInt = 0u) {
        val triple = tripleLength(tmk)
        try {
            vault.put(masterAlias(index), triple)
        } finally {
            triple.fill(0)
        }
    }

    override fun kind(): ModuleKind = ModuleKind.SOFTWARE

    override fun installWorkingKeys(delivery: KeyDelivery) {
        val master = vault.get(masterAlias(delivery.masterIndex))
            ?: throw SecurityModuleException.NoMasterKey(delivery.masterIndex)
        val clear = mutableListOf<Pair<KeyRole, ByteArray>>()
        try {
            for (k in delivery.keys) {
                if (k.algorithm != KeyAlgorithm.TDES) {
                    throw SecurityModuleException.Unsupported("${k.algorithm} working keys")
                }
                if (k.ciphertext.size != 8 && k.ciphertext.size != 16 && k.ciphertext.size != 24) {
                    throw SecurityModuleException.Device("the ${k.role} is not a TDES key")
                }
                val key = crypt(master, Cipher.DECRYPT_MODE, k.ciphertext)
                clear += k.role to key
                val check = withClearKey(key) { crypt(it, Cipher.ENCRYPT_MODE, ByteArray(8)) }
                val given = k.checkValue
                if (given.size !in 3..8 || !MessageDigest.isEqual(check.copyOf(given.size), given)) {
                    throw SecurityModuleException.KeyCheck(k.role)
                }
            }
            // Every key checked: store them (a failure above kept the previous ones).
            for ((role, key) in clear) {
                store(alias(role), tripleLength(key))
                if (role == KeyRole.MAK && key.size >= 16) {
                    // X9.19 uses the halves as single-DES keys.
                    store(MAK_LEFT, tripleLength(key.copyOfRange(0, 8)))
                    store(MAK_RIGHT, tripleLength(key.copyOfRange(8, 16)))
                }
            }
        } catch (e: GeneralSecurityException) {
            throw SecurityModuleException.Device("keystore: ${e.javaClass.simpleName}")
        } finally {
            clear.forEach { it.second.fill(0) }
        }
    }

    override fun hasWorkingKey(role: KeyRole): Boolean = vault.get(alias(role)) != null

    override fun mac(key: KeyRef, direction: MacDirection, method: MacMethod, data: ByteArray): ByteArray {
        if (key !is KeyRef.Working) throw SecurityModuleException.NoDukptKey()
        val mak = vault.get(alias(KeyRole.MAK)) ?: throw SecurityModuleException.NoKey(KeyRole.MAK)
        return try {
            when (method) {
                MacMethod.CUP_ECB -> cupEcb(mak, data)
                MacMethod.X919 -> x919(data)
                MacMethod.X99 -> cbcMac(mak, zeroPad(data))
                else -> throw SecurityModuleException.Unsupported("$method MACs")
            }
        } catch (e: GeneralSecurityException) {
            throw SecurityModuleException.Device("keystore: ${e.javaClass.simpleName}")
        }
    }

    override fun pinBlock(request: PinPadRequest): PinBlock {
        if (request.key !is KeyRef.Working) throw SecurityModuleException.NoDukptKey()
        if (request.format != PinFormat.ISO0) throw SecurityModuleException.Unsupported("PIN block ${request.format}")
        val pik = vault.get(alias(KeyRole.PIK)) ?: throw SecurityModuleException.NoKey(KeyRole.PIK)
        val pan = request.pan?.digits() ?: throw SecurityModuleException.Unsupported("format 0 without a PAN")
        val digits = pinPad(request) ?: throw SecurityModuleException.PinCancelled()
        val clear = ByteArray(8)
        try {
            if (digits.size !in 4..12 || digits.any { it !in '0'..'9' }) throw SecurityModuleException.PinCancelled()
            isoFormat0(digits, pan, clear)
            return PinBlock(crypt(pik, Cipher.ENCRYPT_MODE, clear))
        } catch (e: GeneralSecurityException) {
            throw SecurityModuleException.Device("keystore: ${e.javaClass.simpleName}")
        } finally {
            digits.fill('0')
            clear.fill(0)
        }
    }

    override fun encryptData(key: KeyRef, mode: DataMode, data: ByteArray): ByteArray {
        if (key !is KeyRef.Working) throw SecurityModuleException.NoDukptKey()
        val tdk = vault.get(alias(KeyRole.TDK)) ?: throw SecurityModuleException.NoKey(KeyRole.TDK)
        if (data.size % 8 != 0) throw SecurityModuleException.Device("data is not whole 8-byte blocks")
        return try {
            when (mode) {
                DataMode.ECB -> crypt(tdk, Cipher.ENCRYPT_MODE, data)
                DataMode.CBC_ZERO_IV -> Cipher.getInstance("DESede/CBC/NoPadding").run {
                    init(Cipher.ENCRYPT_MODE, tdk, IvParameterSpec(ByteArray(8)))
                    doFinal(data)
                }
            }
        } catch (e: GeneralSecurityException) {
            throw SecurityModuleException.Device("keystore: ${e.javaClass.simpleName}")
        }
    }

    override fun dukptNext(): ByteArray = throw SecurityModuleException.NoDukptKey()

    private fun store(alias: String, key: ByteArray) {
        try {
            vault.put(alias, key)
        } finally {
            key.fill(0)
        }
    }

    /** UnionPay POS ECB MAC: XOR of the 8-byte blocks, hex, two encryptions, first 8 hex characters. */
    private fun cupEcb(mak: SecretKey, data: ByteArray): ByteArray {
        val r = ByteArray(8)
        for (i in data.indices) r[i % 8] = (r[i % 8].toInt() xor data[i].toInt()).toByte()
        val h = hexUpper(r).toByteArray(Charsets.US_ASCII)
        val e1 = crypt(mak, Cipher.ENCRYPT_MODE, h.copyOfRange(0, 8))
        for (i in 0 until 8) e1[i] = (e1[i].toInt() xor h[8 + i].toInt()).toByte()
        val e2 = crypt(mak, Cipher.ENCRYPT_MODE, e1)
        return hexUpper(e2).substring(0, 8).toByteArray(Charsets.US_ASCII)
    }

    /** ANSI X9.19: single-DES CBC-MAC under the left half, then decrypt right, encrypt left. */
    private fun x919(data: ByteArray): ByteArray {
        val left = vault.get(MAK_LEFT) ?: throw SecurityModuleException.NoKey(KeyRole.MAK)
        val right = vault.get(MAK_RIGHT) ?: throw SecurityModuleException.NoKey(KeyRole.MAK)
        val chain = cbcMac(left, zeroPad(data))
        return crypt(left, Cipher.ENCRYPT_MODE, crypt(right, Cipher.DECRYPT_MODE, chain))
    }

    private fun cbcMac(key: SecretKey, padded: ByteArray): ByteArray {
        val out = Cipher.getInstance("DESede/CBC/NoPadding").run {
            init(Cipher.ENCRYPT_MODE, key, IvParameterSpec(ByteArray(8)))
            doFinal(padded)
        }
        return out.copyOfRange(out.size - 8, out.size)
    }

    companion object {
        private const val MAK_LEFT = "mak.left"
        private const val MAK_RIGHT = "mak.right"

        private fun masterAlias(index: UInt) = "tmk.$index"

        private fun alias(role: KeyRole) = role.name.lowercase()

        /** K1 K2 K1 for a double-length key, K1 K1 K1 for a single one (JCE DESede wants 24 bytes). */
        internal fun tripleLength(key: ByteArray): ByteArray = when (key.size) {
            8 -> key + key + key
            16 -> key + key.copyOfRange(0, 8)
            24 -> key.copyOf()
            else -> throw SecurityModuleException.Device("a TDES key is 8, 16 or 24 bytes")
        }

        private fun crypt(key: SecretKey, mode: Int, data: ByteArray): ByteArray =
            Cipher.getInstance("DESede/ECB/NoPadding").run {
                init(mode, key)
                doFinal(data)
            }

        /** Runs [f] with a short-lived JCE key over [key] (the check value), wiping the copy. */
        private fun <T> withClearKey(key: ByteArray, f: (SecretKey) -> T): T {
            val triple = tripleLength(key)
            try {
                return f(SecretKeySpec(triple, "DESede"))
            } finally {
                triple.fill(0)
            }
        }

        private fun zeroPad(data: ByteArray): ByteArray =
            if (data.isNotEmpty() && data.size % 8 == 0) data.copyOf() else data.copyOf(maxOf(8, (data.size + 7) / 8 * 8))

        private fun hexUpper(b: ByteArray): String = b.joinToString("") { "%02X".format(it.toInt() and 0xFF) }

        /**
         * ISO 9564-1 format 0 into [out]: `0 L P P P P F ... F` XOR `0 0 0 0` and the 12 rightmost
         * PAN digits without the check digit.
         */
        internal fun isoFormat0(pin: CharArray, pan: String, out: ByteArray) {
            val nibbles = IntArray(16) { 0xF }
            nibbles[0] = 0
            nibbles[1] = pin.size
            for (i in pin.indices) nibbles[2 + i] = pin[i] - '0'
            val digits = pan.substring(0, pan.length - 1).takeLast(12).padStart(12, '0')
            val panNibbles = IntArray(16)
            for (i in 0 until 12) panNibbles[4 + i] = digits[i] - '0'
            for (i in 0 until 8) {
                val hi = nibbles[2 * i] xor panNibbles[2 * i]
                val lo = nibbles[2 * i + 1] xor panNibbles[2 * i + 1]
                out[i] = ((hi shl 4) or lo).toByte()
            }
            nibbles.fill(0)
        }
    }
}
