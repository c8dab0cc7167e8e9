package com.smartpos.sample.nfc

import java.io.IOException

/**
 * One contactless card session as the payment kernel sees it: command APDU in, response APDU
 * (data + SW1 SW2) out. Implemented over `IsoDep` ([IsoDepChannel]); the SDK bridge hands it to
 * the core as its `ApduTransport`.
 */
interface ApduChannel {
    /**
     * Sends [apdu] and returns the card's response.
     *
     * @throws CardRemovedException the card left the field (the transaction must stop).
     * @throws CardIoException any other communication failure.
     */
    fun transceive(apdu: ByteArray): ByteArray
}

/** The card left the RF field while a command was in progress. */
class CardRemovedException(cause: Throwable? = null) : IOException("card removed", cause)

/** The card answered nothing usable (timeout, garbled frame, not connected). */
class CardIoException(message: String, cause: Throwable? = null) : IOException(message, cause)
