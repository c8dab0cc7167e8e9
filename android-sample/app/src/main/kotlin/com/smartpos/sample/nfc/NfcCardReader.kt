package com.smartpos.sample.nfc

import android.app.Activity
import android.nfc.NfcAdapter
import android.nfc.Tag
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import android.os.Bundle
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.suspendCancellableCoroutine
import java.io.Closeable
import java.io.IOException
import kotlin.coroutines.resume

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
 * Reader mode belongs to the foreground activity, so [awaitCard] takes it; cancelling the
 * coroutine turns reader mode off again.
 *
 * @param adapter `NfcAdapter.getDefaultAdapter(context)`; `null` on devices without NFC.
 * @param transceiveTimeoutMs IsoDep timeout for one command (GENERATE AC may take a while).
 * @param presenceCheckDelayMs `EXTRA_READER_PRESENCE_CHECK_DELAY`.
 */
class NfcCardReader(
    private val adapter: NfcAdapter?,
    private val transceiveTimeoutMs: Int = 5_000,
    private val presenceCheckDelayMs: Int = 1_000,
) {
    private val mutableState = MutableStateFlow(availability())

    /** The NFC state for the UI. */
    val state: StateFlow<NfcState> = mutableState.asStateFlow()

    /** Whether NFC can be used now: [NfcState.UNAVAILABLE], [NfcState.DISABLED] or [NfcState.IDLE]. */
    fun availability(): NfcState = when {
        adapter == null -> NfcState.UNAVAILABLE
        !adapter.isEnabled -> NfcState.DISABLED
        else -> NfcState.IDLE
    }

    /**
     * Turns reader mode on for [activity] and suspends until a card with ISO-DEP is connected;
     * returns the open channel (close it after the transaction). Cancelling the coroutine turns
     * reader mode off.
     *
     * @throws NfcUnavailableException NFC is missing or off (see [state]).
     */
    suspend fun awaitCard(activity: Activity): IsoDepChannel {
        val nfc = adapter
        val now = availability()
        mutableState.value = now
        if (nfc == null || now != NfcState.IDLE) throw NfcUnavailableException(now)
        return suspendCancellableCoroutine { cont ->
            val callback = NfcAdapter.ReaderCallback { tag ->
                val channel = try {
                    connect(tag)
                } catch (e: IOException) {
                    // A card that fails to connect is ignored: the customer taps again.
                    null
                }
                if (channel != null && cont.isActive) {
                    nfc.disableReaderMode(activity)
                    mutableState.value = NfcState.CARD_PRESENT
                    cont.resume(channel)
                }
            }
            val extras = Bundle().apply {
                putInt(NfcAdapter.EXTRA_READER_PRESENCE_CHECK_DELAY, presenceCheckDelayMs)
            }
            nfc.enableReaderMode(activity, callback, READER_FLAGS, extras)
            mutableState.value = NfcState.WAITING_FOR_CARD
            cont.invokeOnCancellation {
                nfc.disableReaderMode(activity)
                mutableState.value = availability()
            }
        }
    }

    /** Connects to [tag]'s ISO-DEP technology; `null` when the tag has none (e.g. a MIFARE Classic). */
    fun connect(tag: Tag): IsoDepChannel? {
        val isoDep = IsoDep.get(tag) ?: return null
        isoDep.connect()
        isoDep.timeout = transceiveTimeoutMs
        return IsoDepChannel(isoDep) { mutableState.value = NfcState.CARD_REMOVED }
    }

    /** Marks the end of a card session (after the channel was closed). */
    fun finished() {
        mutableState.value = availability()
    }

    companion object {
        /** NFC-A and NFC-B polling (EMV contactless), no NDEF check (saves a round trip per tap). */
        const val READER_FLAGS: Int = NfcAdapter.FLAG_READER_NFC_A or
            NfcAdapter.FLAG_READER_NFC_B or
            NfcAdapter.FLAG_READER_SKIP_NDEF_CHECK
    }
}

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
