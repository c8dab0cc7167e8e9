package com.smartpos.sample.print

import android.annotation.SuppressLint
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothSocket
import com.smartpos.sample.ble.BlePermissions
import java.io.IOException
import java.util.UUID

/**
 * ESC/POS over Bluetooth Classic (RFCOMM, Serial Port Profile), for the common 58/80 mm
 * portable printers. The printer must be paired in the system settings first.
 *
 * Needs `BLUETOOTH_CONNECT` on Android 12+ ([BlePermissions.connect], asked by the activity).
 * Without it the printer is reported [PrintStatus.NO_PERMISSION] (not "no printer"): checked up
 * front through [missingPermissions], and a `SecurityException` from the stack (permission
 * revoked meanwhile) maps to the same status instead of crashing the print job.
 *
 * @param openSocket creates the RFCOMM socket; the default is the standard SPP service record.
 * @param missingPermissions the runtime permissions not granted now, e.g.
 *   `{ BlePermissions.missing(context, BlePermissions.connect()) }`.
 */
@SuppressLint("MissingPermission")
class BluetoothSppPrinter(
    private val adapter: BluetoothAdapter?,
    private val address: String,
    private val openSocket: (BluetoothDevice) -> BluetoothSocket = {
        it.createRfcommSocketToServiceRecord(SPP_UUID)
    },
    private val statusTimeoutMs: Long = 500,
    private val missingPermissions: () -> List<String> = { emptyList() },
) : ReceiptSink {
    override val name: String get() = "Bluetooth SPP $address"

    /**
     * A configured printer is "there" when it is bonded, or when the permission to check is
     * missing: [print] then says [PrintStatus.NO_PERMISSION], so the cashier learns what to fix.
     */
    override fun isAvailable(): Boolean {
        val bt = adapter ?: return false
        if (!bt.isEnabled || !BluetoothAdapter.checkBluetoothAddress(address)) return false
        if (missingPermissions().isNotEmpty()) return true
        return try {
            bt.getRemoteDevice(address).bondState == BluetoothDevice.BOND_BONDED
        } catch (_: SecurityException) {
            true
        }
    }

    override fun print(escpos: ByteArray): PrintStatus {
        val bt = adapter ?: return PrintStatus.NO_PRINTER
        if (!bt.isEnabled || !BluetoothAdapter.checkBluetoothAddress(address)) return PrintStatus.NO_PRINTER
        if (missingPermissions().isNotEmpty()) return PrintStatus.NO_PERMISSION
        val socket = try {
            stopDiscovery(bt)
            openSocket(bt.getRemoteDevice(address)).also { it.connect() }
        } catch (e: IOException) {
            return PrintStatus.NO_PRINTER
        } catch (e: SecurityException) {
            return PrintStatus.NO_PERMISSION
        }
        return try {
            val out = socket.outputStream
            val before = EscPosStatus.query(out, socket.inputStream, statusTimeoutMs)
            if (before != null && before != PrintStatus.PRINTED) return before
            var offset = 0
            while (offset < escpos.size) {
                val n = minOf(CHUNK, escpos.size - offset)
                out.write(escpos, offset, n)
                offset += n
            }
            out.flush()
            val after = EscPosStatus.query(out, socket.inputStream, statusTimeoutMs)
            after ?: PrintStatus.PRINTED
        } catch (e: IOException) {
            PrintStatus.FAILED
        } catch (e: SecurityException) {
            PrintStatus.NO_PERMISSION
        } finally {
            try {
                socket.close()
            } catch (_: IOException) {
                // The printer dropped the link first; nothing left to close.
            }
        }
    }

    /**
     * Discovery slows RFCOMM connections down a lot: stop it first. Android 12+ wants
     * `BLUETOOTH_SCAN` for that; without it this app cannot have started a discovery, so the
     * print goes on.
     */
    private fun stopDiscovery(bt: BluetoothAdapter) {
        try {
            bt.cancelDiscovery()
        } catch (_: SecurityException) {
            // No BLUETOOTH_SCAN: nothing of ours to stop.
        }
    }

    companion object {
        /** The Serial Port Profile service class UUID (Bluetooth assigned number 0x1101). */
        val SPP_UUID: UUID = UUID.fromString("00001101-0000-1000-8000-00805F9B34FB")

        /** Bytes per write: small enough for the printers' receive buffers. */
        const val CHUNK: Int = 512
    }
}
