package com.smartpos.sample.print

import android.Manifest
import android.app.Application
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothSocket
import android.content.Context
import android.os.Build
import com.smartpos.sample.ble.BlePermissions
import org.robolectric.RuntimeEnvironment
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.shadow.api.Shadow
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.io.OutputStream

/**
 * A fake ESC/POS printer on the other end of a Bluetooth socket's streams: answers `DLE EOT n`
 * with the configured status bytes and records everything else as printed.
 */
private class FakeEscPosPrinter(
    private val fromApp: InputStream,
    private val toApp: OutputStream,
    private val status: Map<Int, Int>,
) : Thread("fake-printer") {
    val printed = ByteArrayOutputStream()

    init {
        isDaemon = true
    }

    override fun run() {
        val window = ArrayDeque<Int>()
        try {
            while (true) {
                val b = fromApp.read()
                if (b < 0) return
                window.addLast(b)
                if (window.size == 3 && window.elementAt(0) == 0x10 && window.elementAt(1) == 0x04) {
                    status[window.elementAt(2)]?.let { toApp.write(it); toApp.flush() }
                    window.clear()
                } else if (window.size == 3 || (window.size >= 1 && window.first() != 0x10) ||
                    (window.size >= 2 && window.elementAt(1) != 0x04)
                ) {
                    printed.write(window.removeFirst())
                    while (window.isNotEmpty() && window.first() != 0x10) printed.write(window.removeFirst())
                }
            }
        } catch (_: IOException) {
            // The app closed the socket.
        }
    }
}

@RunWith(RobolectricTestRunner::class)
class PrinterTest {
    private val context: Context = RuntimeEnvironment.getApplication()
    private val receipt = ("SMARTPOS TEST SHOP\n商户名称\nSALE 12.34\n").toByteArray(charset("GB18030")) +
        ByteArray(2000) { (it % 90 + 32).toByte() } + byteArrayOf(0x1D, 0x56, 0x00)

    private fun adapter() = context.getSystemService(BluetoothManager::class.java).adapter.also {
        shadowOf(it).setEnabled(true)
    }

    private fun printOverSpp(status: Map<Int, Int>): Pair<PrintStatus, ByteArray> {
        val socket = Shadow.newInstanceOf(BluetoothSocket::class.java)
        val shadow = shadowOf(socket)
        val fake = FakeEscPosPrinter(shadow.outputStreamSink, shadow.inputStreamFeeder, status)
        fake.start()
        val printer = BluetoothSppPrinter(adapter(), "00:11:22:33:44:55", { socket }, statusTimeoutMs = 300)
        val result = printer.print(receipt)
        fake.join(2_000)
        return result to fake.printed.toByteArray()
    }

    @Test(timeout = 20_000)
    fun spp_printer_receives_every_byte_when_healthy() {
        val (status, printed) = printOverSpp(mapOf(2 to 0x12, 3 to 0x12, 4 to 0x12))
        assertEquals(PrintStatus.PRINTED, status)
        assertArrayEquals(receipt, printed)
    }

    @Test(timeout = 20_000)
    fun spp_printer_out_of_paper_prints_nothing() {
        val (status, printed) = printOverSpp(mapOf(2 to 0x12, 3 to 0x12, 4 to 0x72))
        assertEquals(PrintStatus.OUT_OF_PAPER, status)
        assertEquals(0, printed.size)
    }

    @Test(timeout = 20_000)
    fun spp_printer_cover_open_and_overheat_are_reported() {
        assertEquals(PrintStatus.COVER_OPEN, printOverSpp(mapOf(2 to 0x16)).first)
        assertEquals(PrintStatus.OVERHEATED, printOverSpp(mapOf(2 to 0x12, 3 to 0x52, 4 to 0x12)).first)
    }

    @Test(timeout = 20_000)
    fun silent_spp_printer_still_prints() {
        val (status, printed) = printOverSpp(emptyMap())
        assertEquals(PrintStatus.PRINTED, status)
        assertArrayEquals(receipt, printed)
    }

    @Test(timeout = 20_000)
    fun spp_connect_failure_is_no_printer() {
        // The printer is off or out of range: opening the RFCOMM channel fails.
        val printer = BluetoothSppPrinter(adapter(), "00:11:22:33:44:55", { throw IOException("read failed, socket might closed") })
        assertEquals(PrintStatus.NO_PRINTER, printer.print(receipt))
        assertEquals(PrintStatus.NO_PRINTER, BluetoothSppPrinter(null, "00:11:22:33:44:55").print(receipt))
        assertEquals(PrintStatus.NO_PRINTER, BluetoothSppPrinter(adapter(), "not-an-address").print(receipt))
    }

    @Test
    fun garbage_bytes_are_not_status_answers() {
        assertTrue(EscPosStatus.isStatusByte(0x12))
        assertTrue(EscPosStatus.isStatusByte(0x72))
        assertFalse(EscPosStatus.isStatusByte(0x00))
        assertFalse(EscPosStatus.isStatusByte(0xFF))
        assertFalse(EscPosStatus.isStatusByte('A'.code))
    }

    @Test
    fun sunmi_raw_escpos_goes_through_the_aidl_service() {
        val service = FakeWoyou(state = 1)
        val printer = SunmiPrinter()
        assertFalse(printer.isAvailable())
        assertEquals(PrintStatus.NO_PRINTER, printer.print(receipt))
        printer.attach(service)
        assertTrue(printer.isAvailable())
        assertEquals(PrintStatus.PRINTED, printer.print(receipt))
        assertArrayEquals(receipt, service.received.toByteArray())
    }

    @Test
    fun sunmi_status_codes_map_to_cashier_states() {
        val expected = mapOf(
            4 to PrintStatus.OUT_OF_PAPER,
            5 to PrintStatus.OVERHEATED,
            6 to PrintStatus.COVER_OPEN,
            505 to PrintStatus.NO_PRINTER,
        )
        for ((code, status) in expected) {
            val service = FakeWoyou(state = code)
            val printer = SunmiPrinter().also { it.attach(service) }
            assertEquals("code $code", status, printer.print(receipt))
            assertEquals("nothing sent with code $code", 0, service.received.size())
        }
        assertEquals(PrintStatus.FAILED, SunmiPrinter.statusOf(3))
    }

    private class Fixed(override val name: String, private val here: Boolean) : ReceiptSink {
        var jobs = 0
        override fun isAvailable() = here
        override fun print(escpos: ByteArray): PrintStatus {
            jobs++
            return PrintStatus.PRINTED
        }
    }

    @Test
    fun selector_uses_the_first_available_printer_at_print_time() {
        val builtIn = Fixed("builtin", here = false)
        val bt = Fixed("bt", here = true)
        val selector = PrinterSelector(listOf(builtIn, bt))
        assertEquals("bt", selector.name)
        assertEquals(PrintStatus.PRINTED, selector.print(receipt))
        assertEquals(0, builtIn.jobs)
        assertEquals(1, bt.jobs)
        assertEquals(PrintStatus.NO_PRINTER, PrinterSelector(listOf(builtIn)).print(receipt))
    }

    @Test(timeout = 20_000)
    fun spp_without_bluetooth_connect_is_permission_missing_not_no_printer_nor_a_crash() {
        val address = "00:11:22:33:44:66"
        shadowOf(context as Application).denyPermissions(Manifest.permission.BLUETOOTH_CONNECT, Manifest.permission.BLUETOOTH_SCAN)
        val adapter = adapter()
        // As on Android 12+: bond state, RFCOMM sockets, ... throw without BLUETOOTH_CONNECT.
        val device = shadowOf(adapter.getRemoteDevice(address))
        device.setShouldThrowSecurityExceptions(true)
        try {
            // Even without the up-front check, the stack's SecurityException is mapped.
            val unchecked = BluetoothSppPrinter(adapter, address)
            assertTrue("configured: reported, so the cashier hears why", unchecked.isAvailable())
            assertEquals(PrintStatus.NO_PERMISSION, unchecked.print(receipt))
            // With the check (as the app wires it): nothing is tried, and the selector says so.
            val checked = BluetoothSppPrinter(adapter, address, missingPermissions = {
                BlePermissions.missing(context, BlePermissions.connect())
            })
            assertEquals(PrintStatus.NO_PERMISSION, checked.print(receipt))
            assertEquals(PrintStatus.NO_PERMISSION, PrinterSelector(listOf(checked)).print(receipt))
            assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), BlePermissions.missing(context, BlePermissions.connect()))
            assertEquals(emptyList<String>(), BlePermissions.connect(Build.VERSION_CODES.R))
        } finally {
            device.setShouldThrowSecurityExceptions(false)
        }
    }
}
