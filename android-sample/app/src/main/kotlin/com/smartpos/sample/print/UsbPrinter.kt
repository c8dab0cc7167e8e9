package com.smartpos.sample.print

import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.hardware.usb.UsbConstants
import android.hardware.usb.UsbDevice
import android.hardware.usb.UsbEndpoint
import android.hardware.usb.UsbInterface
import android.hardware.usb.UsbManager

/**
 * ESC/POS over USB (USB printer class or vendor bulk interface), through the USB host API.
 *
 * The first use asks the user for permission (`UsbManager.requestPermission`; the answer arrives
 * as a broadcast of [ACTION_USB_PERMISSION]) and returns [PrintStatus.NO_PERMISSION]; once
 * granted, the receipt goes out by bulk transfer on the interface's OUT endpoint. Before that,
 * the printer class request GET_PORT_STATUS (USB Device Class Definition for Printing Devices
 * 1.1, section 4.2.2: bit 5 paper empty, bit 3 not error) tells an empty roll apart.
 *
 * @param deviceFilter which attached device is the printer (default: any with a printer-class
 *   or bulk-OUT interface).
 */
class UsbPrinter(
    private val context: Context,
    private val usb: UsbManager,
    private val deviceFilter: (UsbDevice) -> Boolean = { findOut(it) != null },
    private val timeoutMs: Int = 5_000,
) : ReceiptSink {
    override val name: String get() = "USB ${device()?.deviceName ?: "-"}"

    /** The attached printer, if any. */
    fun device(): UsbDevice? = usb.deviceList.values.firstOrNull(deviceFilter)

    override fun isAvailable(): Boolean = device() != null

    override fun print(escpos: ByteArray): PrintStatus {
        val device = device() ?: return PrintStatus.NO_PRINTER
        if (!usb.hasPermission(device)) {
            val intent = Intent(ACTION_USB_PERMISSION).setPackage(context.packageName)
            val pending = PendingIntent.getBroadcast(context, 0, intent, PendingIntent.FLAG_MUTABLE)
            usb.requestPermission(device, pending)
            return PrintStatus.NO_PERMISSION
        }
        val (intf, out) = findOut(device) ?: return PrintStatus.NO_PRINTER
        val connection = usb.openDevice(device) ?: return PrintStatus.NO_PRINTER
        try {
            if (!connection.claimInterface(intf, true)) return PrintStatus.NO_PRINTER
            if (intf.interfaceClass == UsbConstants.USB_CLASS_PRINTER) {
                val status = ByteArray(1)
                val n = connection.controlTransfer(
                    GET_PORT_STATUS_REQUEST_TYPE, GET_PORT_STATUS, 0, intf.id, status, 1, timeoutMs,
                )
                if (n == 1 && status[0].toInt() and 0x20 != 0) return PrintStatus.OUT_OF_PAPER
            }
            var offset = 0
            while (offset < escpos.size) {
                val len = minOf(MAX_BULK, escpos.size - offset)
                val sent = connection.bulkTransfer(out, escpos, offset, len, timeoutMs)
                if (sent <= 0) return PrintStatus.FAILED
                offset += sent
            }
            return PrintStatus.PRINTED
        } finally {
            connection.releaseInterface(intf)
            connection.close()
        }
    }

    companion object {
        /** Broadcast action carrying the user's USB permission answer. */
        const val ACTION_USB_PERMISSION: String = "com.smartpos.sample.USB_PERMISSION"

        /** Class-specific, device-to-host, interface (USB printer class 1.1). */
        const val GET_PORT_STATUS_REQUEST_TYPE: Int = 0xA1

        /** bRequest of GET_PORT_STATUS (USB printer class 1.1). */
        const val GET_PORT_STATUS: Int = 1

        /** Largest bulk transfer accepted by all Android versions (16 KiB before API 28). */
        const val MAX_BULK: Int = 16_384

        /** The printer interface and its bulk OUT endpoint, preferring the printer class. */
        fun findOut(device: UsbDevice): Pair<UsbInterface, UsbEndpoint>? {
            val interfaces = (0 until device.interfaceCount).map { device.getInterface(it) }
                .sortedBy { if (it.interfaceClass == UsbConstants.USB_CLASS_PRINTER) 0 else 1 }
            for (intf in interfaces) {
                for (i in 0 until intf.endpointCount) {
                    val ep = intf.getEndpoint(i)
                    if (ep.type == UsbConstants.USB_ENDPOINT_XFER_BULK && ep.direction == UsbConstants.USB_DIR_OUT) {
                        return intf to ep
                    }
                }
            }
            return null
        }
    }
}
