package com.smartpos.sample.nfc

import android.app.Activity
import android.app.Application
import android.nfc.NfcAdapter
import android.nfc.Tag
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import android.os.Bundle
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withTimeout
import java.io.Closeable
import java.io.IOException
import kotlin.coroutines.resumeWithException

/** What the NFC side of the terminal is doing, for the "present card" screen. */
enum class NfcState {
    /** The device has no NFC controller: use the mPOS reader or keyed entry. */
    UNAVAILABLE,

    /** NFC exists but is switched off in the system settings. */
    DISABLED,

    /** NFC is on; nobody is waiting for a card. */
    IDLE,

    /** Reader mode is on: the customer should tap the card now. */
    WAITING_FOR_CARD,

    /** A card is connected and the kernel is talking to it. */
    CARD_PRESENT,

    /** The card was removed before the kernel finished. */
    CARD_REMOVED,
}

/**
 * Contactless card access with the platform NFC stack, the way a cashier app does it:
 * reader mode (NFC-A and NFC-B polling, no NDEF check, a presence-check delay so the stack does
 * not ping the card while the kernel talks to it), `IsoDep.get(tag)`, `connect`, a transceive
 * timeout.
 *
 * Reader mode belongs to the resumed activity. It stays on from [awaitCard] until [finished]
 * (the card session is over): turning it off while the `IsoDep` is connected restarts discovery
 * and drops the card. Register the reader with `Application.registerActivityLifecycleCallbacks`
 * so it follows the activity: a wait that outlives its activity (a configuration change) moves
 * to the next resumed one, and a destroyed activity is never handed back to the `NfcAdapter`
 * (which throws for it). The wait for a card ends after [cardWaitMs] or [cancelWait] with a
 * [NoCardException]; cancelling the coroutine turns reader mode off too.
 *
 * @param adapter `NfcAdapter.getDefaultAdapter(context)`; `null` on devices without NFC.
 * @param transceiveTimeoutMs IsoDep timeout for one command (GENERATE AC may take a while).
 * @param presenceCheckDelayMs `EXTRA_READER_PRESENCE_CHECK_DELAY`.
 * @param cardWaitMs how long [awaitCard] waits for a tap.
 */
class NfcCardReader(
    private val adapter: NfcAdapter?,
    private val transceiveTimeoutMs: Int = 5_000,
    private val presenceCheckDelayMs: Int = 1_000,
    private val cardWaitMs: Long = 60_000,
) : Application.ActivityLifecycleCallbacks {
    private val mutableState = MutableStateFlow(availability())

    /** The NFC state for the UI. */
    val state: StateFlow<NfcState> = mutableState.asStateFlow()

    private val lock = Any()

    /** The resumed activity (lifecycle callbacks). */
    private var resumed: Activity? = null

    /** The activity reader mode is on for, from [awaitCard] until [finished]. */
    private var readerModeOn: Activity? = null

    /** The [awaitCard] waiting for a tap and its reader callback. */
    private var waiting: CancellableContinuation<IsoDepChannel>? = null
    private var callback: NfcAdapter.ReaderCallback? = null

    /** Whether NFC can be used now: [NfcState.UNAVAILABLE], [NfcState.DISABLED] or [NfcState.IDLE]. */
    fun availability(): NfcState = when {
        adapter == null -> NfcState.UNAVAILABLE
        !adapter.isEnabled -> NfcState.DISABLED
        else -> NfcState.IDLE
    }

    /**
     * Turns reader mode on for [activity] (or the resumed activity, or the next one to resume)
     * and suspends until a card with ISO-DEP is connected; returns the open channel. Reader mode
     * stays on until [finished]: close the channel, then call it.
     *
     * @throws NfcUnavailableException NFC is missing or off (see [state]).
     * @throws NoCardException no card within [cardWaitMs], or [cancelWait].
     */
    suspend fun awaitCard(activity: Activity? = null): IsoDepChannel {
        val now = availability()
        mutableState.value = now
        if (adapter == null || now != NfcState.IDLE) throw NfcUnavailableException(now)
        try {
            return withTimeout(cardWaitMs) {
                suspendCancellableCoroutine { cont ->
                    val cb = NfcAdapter.ReaderCallback { tag -> onTag(tag, cont) }
                    val host = synchronized(lock) {
                        waiting?.resumeWithException(NoCardException("another card wait started"))
                        waiting = cont
                        callback = cb
                        activity?.takeUnless { it.isDestroyed } ?: resumed
                    }
                    mutableState.value = NfcState.WAITING_FOR_CARD
                    // No activity now: reader mode starts when one resumes.
                    host?.let { startReaderMode(it, cb) }
                }
            }
        } catch (e: TimeoutCancellationException) {
            finished()
            throw NoCardException("no card within $cardWaitMs ms")
        } catch (e: Throwable) {
            finished()
            throw e
        }
    }

    /** Ends a running [awaitCard] with [NoCardException] (the cashier cancelled); false when none ran. */
    fun cancelWait(): Boolean {
        val cont = synchronized(lock) { waiting.also { waiting = null } } ?: return false
        cont.resumeWithException(NoCardException("card wait cancelled"))
        return true
    }

    private fun onTag(tag: Tag, cont: CancellableContinuation<IsoDepChannel>) {
        val channel = try {
            connect(tag)
        } catch (e: IOException) {
            // A card that fails to connect is ignored: the customer taps again.
            null
        } ?: return
        val ours = synchronized(lock) { (waiting === cont).also { if (it) waiting = null } }
        if (!ours || !cont.isActive) {
            // Nobody waits for it (cancelled, timed out): release the card at once.
            channel.close()
            return
        }
        mutableState.value = NfcState.CARD_PRESENT
        // Cancelled between the check and here: the channel is closed, never leaked.
        cont.resume(channel) { _, unused, _ -> unused.close() }
    }

    /** Connects to [tag]'s ISO-DEP technology; `null` when the tag has none (e.g. a MIFARE Classic). */
    fun connect(tag: Tag): IsoDepChannel? {
        val isoDep = IsoDep.get(tag) ?: return null
        isoDep.connect()
        isoDep.timeout = transceiveTimeoutMs
        return IsoDepChannel(isoDep) { mutableState.value = NfcState.CARD_REMOVED }
    }

    /** Ends the card session (after the channel was closed): reader mode off. */
    fun finished() {
        val a = synchronized(lock) {
            waiting = null
            callback = null
            readerModeOn.also { readerModeOn = null }
        }
        a?.let { stopReaderMode(it) }
        mutableState.value = availability()
    }

    private fun startReaderMode(activity: Activity, cb: NfcAdapter.ReaderCallback) {
        val nfc = adapter ?: return
        val extras = Bundle().apply { putInt(NfcAdapter.EXTRA_READER_PRESENCE_CHECK_DELAY, presenceCheckDelayMs) }
        try {
            nfc.enableReaderMode(activity, cb, READER_FLAGS, extras)
            synchronized(lock) { readerModeOn = activity }
        } catch (e: IllegalStateException) {
            // Destroyed meanwhile: the next resumed activity gets reader mode.
        }
    }

    private fun stopReaderMode(activity: Activity) {
        // The platform forgets a destroyed activity's reader mode and throws if asked about it.
        if (activity.isDestroyed) return
        try {
            adapter?.disableReaderMode(activity)
        } catch (e: IllegalStateException) {
            // Destroyed between the check and the call: nothing left to turn off.
        }
    }

    override fun onActivityResumed(activity: Activity) {
        val cb = synchronized(lock) {
            resumed = activity
            // A wait whose activity went away (e.g. recreated): reader mode on the new one.
            callback.takeIf { waiting != null && readerModeOn == null }
        }
        cb?.let { startReaderMode(activity, it) }
    }

    override fun onActivityPaused(activity: Activity) {
        synchronized(lock) { if (resumed === activity) resumed = null }
    }

    override fun onActivityDestroyed(activity: Activity) {
        synchronized(lock) {
            if (resumed === activity) resumed = null
            if (readerModeOn === activity) readerModeOn = null
        }
    }

    override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
    override fun onActivityStarted(activity: Activity) = Unit
    override fun onActivityStopped(activity: Activity) = Unit
    override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit

    companion object {
        /** NFC-A and NFC-B polling (EMV contactless), no NDEF check (saves a round trip per tap). */
        const val READER_FLAGS: Int = NfcAdapter.FLAG_READER_NFC_A or
            NfcAdapter.FLAG_READER_NFC_B or
            NfcAdapter.FLAG_READER_SKIP_NDEF_CHECK
    }
}

/** No card was presented: none within the wait, or the cashier cancelled the wait. */
class NoCardException(message: String) : IOException(message)

/** NFC cannot be used; [state] says why ([NfcState.UNAVAILABLE] or [NfcState.DISABLED]). */
class NfcUnavailableException(val state: NfcState) : IOException("NFC not usable: $state")

/**
 * [ApduChannel] over a connected [IsoDep]. A lost tag becomes [CardRemovedException] (and
 * [onRemoved] runs, so the UI can say "card removed"); other I/O errors become [CardIoException].
 */
class IsoDepChannel(
    /** The connected tag technology. */
    val isoDep: IsoDep,
    private val onRemoved: () -> Unit = {},
) : ApduChannel, Closeable {
    override fun transceive(apdu: ByteArray): ByteArray {
        val response = try {
            isoDep.transceive(apdu)
        } catch (e: TagLostException) {
            onRemoved()
            throw CardRemovedException(e)
        } catch (e: IOException) {
            if (!isoDep.isConnected) {
                onRemoved()
                throw CardRemovedException(e)
            }
            throw CardIoException("card did not answer", e)
        }
        // A response shorter than SW1 SW2 is not an APDU response: never hand it on.
        if (response == null || response.size < 2) throw CardIoException("short response")
        return response
    }

    /** The largest APDU the controller accepts (for the kernel's READ RECORD sizing). */
    val maxTransceiveLength: Int get() = isoDep.maxTransceiveLength

    override fun close() {
        try {
            isoDep.close()
        } catch (_: IOException) {
            // Closing a tag that already left the field fails; nothing is left to release.
        }
    }
}
