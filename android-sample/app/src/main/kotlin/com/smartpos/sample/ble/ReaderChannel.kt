package com.smartpos.sample.ble

import kotlinx.coroutines.flow.Flow

/**
 * A byte pipe to the mPOS card reader: frames go out in chunks that fit one BLE write, and the
 * reader's notifications come back as they arrive. The SDK's reader-link framing (length,
 * sequence, checksum) sits on top; this layer only moves bytes.
 */
interface ReaderChannel {
    /** Largest chunk [write] accepts (ATT MTU - 3). */
    val maxChunk: Int

    /** Writes one chunk with response (returns after the reader acknowledged it). */
    suspend fun write(chunk: ByteArray)

    /** Writes [frame], split into [maxChunk]-sized chunks, in order. */
    suspend fun writeFrame(frame: ByteArray) {
        var offset = 0
        while (offset < frame.size) {
            val end = minOf(frame.size, offset + maxChunk)
            write(frame.copyOfRange(offset, end))
            offset = end
        }
    }

    /** The reader's notifications, in arrival order. */
    val notifications: Flow<ByteArray>

    /** Disconnects. */
    fun close()
}

/** The BLE link failed; [reason] is for logs. */
open class ReaderLinkException(val reason: String) : java.io.IOException(reason)
