package com.smartpos.sample.print

import java.io.InputStream
import java.io.OutputStream

/**
 * Real-time status of an ESC/POS printer through `DLE EOT n` (0x10 0x04 n), for printers on a
 * byte stream (Bluetooth SPP).
 *
 * Bit meanings are facts from the Epson "ESC/POS Command Reference", `DLE EOT`: every status byte
 * has bit 1 and bit 4 set and bits 0 and 7 clear; n=2 (off-line cause): bit 2 cover open, bit 5
 * printing stopped by paper end, bit 6 error; n=3 (error cause): bit 6 auto-recoverable error
 * (print head temperature); n=4 (roll paper sensor): bits 5-6 paper end.
 * A byte that does not have the fixed bits is not a status answer and is ignored.
 */
object EscPosStatus {
    private const val DLE: Byte = 0x10
    private const val EOT: Byte = 0x04

    /**
     * Asks the printer; returns the fault it reports, [PrintStatus.PRINTED] when none, or `null`
     * when it did not answer within [timeoutMs] (many cheap printers never answer: print anyway).
     */
    fun query(output: OutputStream, input: InputStream, timeoutMs: Long = 500): PrintStatus? {
        val offline = ask(output, input, 2, timeoutMs) ?: return null
        if (offline and 0x04 != 0) return PrintStatus.COVER_OPEN
        val paper = ask(output, input, 4, timeoutMs)
        if (offline and 0x20 != 0 || (paper != null && paper and 0x60 != 0)) return PrintStatus.OUT_OF_PAPER
        val error = ask(output, input, 3, timeoutMs)
        if (error != null && error and 0x40 != 0) return PrintStatus.OVERHEATED
        return PrintStatus.PRINTED
    }

    /** Whether [b] has the fixed bits of a `DLE EOT` status byte. */
    fun isStatusByte(b: Int): Boolean = b and 0x93 == 0x12

    private fun ask(output: OutputStream, input: InputStream, n: Int, timeoutMs: Long): Int? {
        drain(input)
        output.write(byteArrayOf(DLE, EOT, n.toByte()))
        output.flush()
        val deadline = System.nanoTime() + timeoutMs * 1_000_000
        while (System.nanoTime() < deadline) {
            if (input.available() > 0) {
                val b = input.read()
                if (b < 0) return null
                if (isStatusByte(b)) return b
            } else {
                Thread.sleep(5)
            }
        }
        return null
    }

    private fun drain(input: InputStream) {
        // Late answers to an earlier question must not be read as this one's.
        var left = input.available()
        while (left > 0) {
            input.skip(left.toLong())
            left = input.available()
        }
    }
}
