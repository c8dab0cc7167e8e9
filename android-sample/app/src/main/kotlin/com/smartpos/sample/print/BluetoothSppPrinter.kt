package com.smartpos.sample.print

import android.annotation.SuppressLint
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothSocket
import java.io.IOException
import java.util.UUID

/**
 * ESC/POS over Bluetooth Classic (RFCOMM, Serial Port Profile), for the common 58/80 mm
 * portable printers. The printer must be paired in the system settings first.
 *
 * Needs `BLUETOOTH_CONNECT` on Android 12+ (see [com.smartpos.sample.ble.BlePermissions]).
 *
 * @param openSocket creates the RFCOMM socket; the default is the standard SPP service record.
 */
@SuppressLint("MissingPermission")
class BluetoothSppPrinter(
    private val adapter: BluetoothAdapter?,
    private val address: String,
    private val openSocket: (BluetoothDevice) -> BluetoothSocket = {
        it.createRfcommSocketToServiceRecord(SPP_UUID)
    },
    private val statusTimeoutMs: Long = 500,
) : ReceiptSink {
    override val name: String get() = "Bluetooth SPP $address"

    override fun isAvailable(): Boolean {
        val bt = adapter ?: return false
        if (!bt.isEnabled || !BluetoothAdapter.checkBluetoothAddress(address)) return false
        return bt.getRemoteDevice(address).bondState == BluetoothDevice.BOND_BONDED
    }

    override fun print(escpos: ByteArray): PrintStatus {
        val bt = adapter ?: return PrintStatus.NO_PRINTER
        if (!bt.isEnabled || !BluetoothAdapter.checkBluetoothAddress(address)) return PrintStatus.NO_PRINTER
        val socket = try {
            // Discovery slows RFCOMM connections down a lot: stop it first.
            bt.cancelDiscovery()
            openSocket(bt.getRemoteDevice(address)).also { it.connect() }
        } catch (e: IOException) {
            return PrintStatus.NO_PRINTER
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
        } finally {
            try {
                socket.close()
            } catch (_: IOException) {
                // The printer dropped the link first; nothing left to close.
            }
        }
    }

    companion object {
        /** The Serial Port Profile service class UUID (Bluetooth assigned number 0x1101). */
        val SPP_UUID: UUID = UUID.fromString("00001101-0000-1000-8000-00805F9B34FB")

        /** Bytes per write: small enough for the printers' receive buffers. */
        const val CHUNK: Int = 512
    }
}
