package com.smartpos.sample.sdk

import android.content.Context
import com.smartpos.sample.keys.KeystoreSecureStore
import com.smartpos.sdk.ffi.CardInput
import com.smartpos.sdk.ffi.CardReader
import com.smartpos.sdk.ffi.CardReaderException
import com.smartpos.sdk.ffi.SecureStore
import com.smartpos.sdk.ffi.Terminal
import com.smartpos.sdk.ffi.TerminalConfig
import java.io.File
import java.security.MessageDigest

/**
 * The app's Keystore-wrapped store as the SDK's [SecureStore] (the SDK reads `tmk` and
 * `journal_key` once on open and writes `journal_key` once). An exception here becomes an
 * error value in the SDK (the terminal does not open), never a crash.
 */
class KeystoreSdkStore(private val store: KeystoreSecureStore) : SecureStore {
    override fun get(name: String): ByteArray? = store.get(name)

    override fun put(name: String, value: ByteArray) = store.put(name, value)
}

/**
 * Operators and supervisors kept in the Keystore-wrapped store (`op.<code>` / `sup.<code>`
 * hold the password), compared in constant time. Provisioning them is the back office's job.
 */
class StoredOperators(private val store: KeystoreSecureStore) : OperatorCheck {
    override fun check(operator: String, password: String, supervisor: Boolean): Boolean {
        if (operator.isEmpty() || operator.length > 16 || !operator.all { it.isLetterOrDigit() }) return false
        val stored = runCatching { store.get((if (supervisor) "sup." else "op.") + operator) }.getOrNull() ?: return false
        val given = password.toByteArray(Charsets.UTF_8)
        return try {
            MessageDigest.isEqual(stored, given)
        } finally {
            stored.fill(0)
            given.fill(0)
        }
    }
}

/**
 * The SDK's [CardReader] over a card source of the app. The SDK's reader interface takes
 * keyed or track-2 data today; a contactless EMV read through `IsoDep` needs the SDK's
 * `ApduTransport` (not in the bindings yet), so [source] is where the app plugs its card input.
 */
class SourceCardReader(private val source: suspend (amount: Long) -> CardInput) : CardReader {
    override suspend fun readCard(amount: ULong): CardInput = source(amount.toLong())
}

/** Builds the terminal and the gateway of the app from its settings. */
object SdkWiring {
    /**
     * Opens the terminal with its journal in the app's private files (`files/smartpos`),
     * the settings `tid`, `mid`, `host` from shared preferences [prefs] (TLS with the system's
     * trust store is the SDK's default when `tls` is configured; plain TCP otherwise).
     */
    fun open(
        context: Context,
        prefs: String,
        secrets: KeystoreSecureStore,
        cards: suspend (amount: Long) -> CardInput,
    ): SdkGateway {
        val p = context.getSharedPreferences(prefs, Context.MODE_PRIVATE)
        val config = TerminalConfig(
            tid = p.getString("tid", "") ?: "",
            mid = p.getString("mid", "") ?: "",
            host = p.getString("host", "") ?: "",
            utcOffsetMinutes = java.util.TimeZone.getDefault().rawOffset / 60_000,
        )
        val dir = File(context.filesDir, "smartpos").also { it.mkdirs() }
        val terminal = Terminal.open(config, dir.path, KeystoreSdkStore(secrets), SourceCardReader(cards))
        return SdkGateway(terminal, StoredOperators(secrets))
    }

    /**
     * The card source while the SDK has no APDU transport: refuses with a clear reason (shown
     * with the SDK's `card` diagnosis); nothing is sent to the host.
     */
    val contactlessNotYetSupported: suspend (Long) -> CardInput = {
        throw CardReaderException.Failed("contactless needs the SDK's ApduTransport (not in the bindings yet)")
    }
}
