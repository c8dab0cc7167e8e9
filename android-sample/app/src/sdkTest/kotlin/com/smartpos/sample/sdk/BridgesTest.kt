package com.smartpos.sample.sdk

import android.app.Activity
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothGattService
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.bluetooth.BluetoothSocket
import android.content.Context
import android.content.DialogInterface
import android.hardware.usb.UsbManager
import android.nfc.Tag
import android.nfc.TagLostException
import android.os.Bundle
import android.widget.EditText
import com.smartpos.sample.ble.BlePermissions
import com.smartpos.sample.ble.BleReaderTransport
import com.smartpos.sample.ble.ReaderChannel
import com.smartpos.sample.ble.ReaderProfile
import com.smartpos.sample.nfc.ApduChannel
import com.smartpos.sample.nfc.CardIoException
import com.smartpos.sample.nfc.LosableIsoDep
import com.smartpos.sample.nfc.NfcCardReader
import com.smartpos.sample.nfc.NfcState
import com.smartpos.sample.nfc.NfcUnavailableException
import com.smartpos.sample.nfc.NoCardException
import com.smartpos.sample.print.BluetoothSppPrinter
import com.smartpos.sample.print.FakeUsbPrinterConnection
import com.smartpos.sample.print.FakeWoyou
import com.smartpos.sample.print.PermissionRecordingUsbManager
import com.smartpos.sample.print.PrintStatus
import com.smartpos.sample.print.PrinterSelector
import com.smartpos.sample.print.SunmiPrinter
import com.smartpos.sample.print.UsbPrinter
import com.smartpos.sdk.ffi.ApduTransport
import com.smartpos.sdk.ffi.CardTransportException
import com.smartpos.sdk.ffi.PrintJob
import com.smartpos.sdk.ffi.PrinterStatus
import com.smartpos.sdk.ffi.ReceiptCopy
import com.smartpos.sdk.ffi.SimCardProfile
import com.smartpos.sdk.ffi.SimulatedReader
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.yield
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadow.api.Shadow
import org.robolectric.shadows.ShadowAlertDialog
import org.robolectric.shadows.ShadowLooper
import org.robolectric.util.ReflectionHelpers
import org.robolectric.util.ReflectionHelpers.ClassParameter
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.io.OutputStream
import java.util.Collections
import java.util.UUID
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** The bridges from the app's hardware adapters to the SDK's foreign traits. */
@RunWith(RobolectricTestRunner::class)
@Config(shadows = [LosableIsoDep::class, FakeUsbPrinterConnection::class, PermissionRecordingUsbManager::class])
class BridgesTest {
    private val context: Context = RuntimeEnvironment.getApplication()
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
    private val escpos = byteArrayOf(0x1B, 0x40) + "SMARTPOS TEST\n".toByteArray() + ByteArray(600) { 0x2D } +
        byteArrayOf(0x1D, 0x56, 0x00)
    private val job = PrintJob("000001000001", ReceiptCopy.CUSTOMER, escpos, listOf("SMARTPOS TEST"), false)

    @Before
    fun setUp() {
        LosableIsoDep.lost = false
        FakeUsbPrinterConnection.reset()
    }

    @After
    fun tearDown() = scope.cancel()

    // ---- NFC ----------------------------------------------------------------------------

    private fun isoDepTag(): Tag = ReflectionHelpers.callStaticMethod(
        Tag::class.java,
        "createMockTag",
        ClassParameter.from(ByteArray::class.java, byteArrayOf(0x04, 0x11, 0x22, 0x33)),
        ClassParameter.from(IntArray::class.java, intArrayOf(3)), // TagTechnology.ISO_DEP
        ClassParameter.from(Array<Bundle>::class.java, arrayOf(Bundle())),
        ClassParameter.from(java.lang.Long.TYPE, 0L),
    )

    @Test
    fun iso_dep_transport_relays_apdus_and_a_lost_tag_is_card_removed() {
        val channel = NfcCardReader(null).connect(isoDepTag())!!
        val transport = IsoDepApduTransport(channel)
        val iso = shadowOf(channel.isoDep)
        val fci = byteArrayOf(0x6F, 0x03, 0x84.toByte(), 0x01, 0x01, 0x90.toByte(), 0x00)
        iso.setNextTransceiveResponse(fci)
        val selectPpse = byteArrayOf(0x00, 0xA4.toByte(), 0x04, 0x00, 0x0E) + "2PAY.SYS.DDF01".toByteArray() + byteArrayOf(0x00)
        assertArrayEquals(fci, transport.transceive(selectPpse))

        LosableIsoDep.lost = true
        try {
            transport.transceive(selectPpse)
            fail("a lost tag has no answer")
        } catch (e: CardTransportException.CardRemoved) {
            assertTrue(e.reason.isNotEmpty())
        }
    }

    /** A card source that counts its sessions and can be told to wait until cancelled. */
    private class CountingCards(private val waitForCancel: Boolean = false) : CardSource {
        val presented = AtomicInteger()
        val released = AtomicInteger()
        val cancelled = AtomicInteger()
        val apdus = Collections.synchronizedList(mutableListOf<ByteArray>())
        private val cancel = CompletableFuture<Unit>()

        override suspend fun present(amount: Long): CardSession {
            presented.incrementAndGet()
            if (waitForCancel) {
                withContext(Dispatchers.IO) { cancel.get(10, TimeUnit.SECONDS) }
                throw NoCardException("card wait cancelled")
            }
            val card = object : ApduTransport {
                override fun transceive(apdu: ByteArray): ByteArray {
                    apdus += apdu
                    return byteArrayOf(0x90.toByte(), 0x00)
                }
            }
            return CardSession(card) { released.incrementAndGet() }
        }

        override fun cancel(): Boolean {
            cancelled.incrementAndGet()
            return cancel.complete(Unit)
        }
    }

    @Test
    fun lazy_card_transport_asks_for_the_card_at_the_first_apdu_only() {
        // Never talked to (a replayed sale): no card session, nothing to cancel or release.
        val idle = CountingCards()
        LazyCardTransport(idle, 100).close()
        assertEquals(listOf(0, 0, 0), listOf(idle.presented.get(), idle.cancelled.get(), idle.released.get()))

        // One session for the whole card read, released once when the sale is over.
        val cards = CountingCards()
        val transport = LazyCardTransport(cards, 100)
        repeat(3) { assertArrayEquals(byteArrayOf(0x90.toByte(), 0x00), transport.transceive(byteArrayOf(0, 0xA4.toByte(), 4, 0))) }
        assertEquals(1, cards.presented.get())
        assertEquals(3, cards.apdus.size)
        assertNull(transport.failure)
        transport.close()
        transport.close()
        assertEquals(1, cards.released.get())
        assertEquals(0, cards.cancelled.get())
        try {
            transport.transceive(byteArrayOf(0))
            fail("the session is over")
        } catch (e: CardTransportException.CardRemoved) {
            assertEquals(1, cards.presented.get())
        }
    }

    @Test
    fun lazy_card_transport_keeps_why_no_card_came_and_close_cancels_a_running_wait() {
        val off = LazyCardTransport(CardSource { throw NfcUnavailableException(NfcState.DISABLED) }, 100)
        try {
            off.transceive(byteArrayOf(0))
            fail("no card")
        } catch (e: CardTransportException) {
            assertFalse("no card data in the reason", e.message.orEmpty().contains("00A4"))
        }
        assertTrue("${off.failure}", off.failure is NfcUnavailableException)

        // The sale is given up while the customer has not tapped yet: close() ends the wait.
        val cards = CountingCards(waitForCancel = true)
        val transport = LazyCardTransport(cards, 100)
        val sdkThread = CompletableFuture.supplyAsync { runCatching { transport.transceive(byteArrayOf(0)) }.exceptionOrNull() }
        val end = System.currentTimeMillis() + 5_000
        while (cards.presented.get() == 0 && System.currentTimeMillis() < end) Thread.sleep(5)
        Thread.sleep(50)
        transport.close()
        val thrown = sdkThread.get(5, TimeUnit.SECONDS)
        assertTrue("$thrown", thrown is CardTransportException)
        assertEquals(1, cards.cancelled.get())
        assertTrue("${transport.failure}", transport.failure is NoCardException)
        assertEquals(0, cards.released.get())
    }

    @Test
    fun other_channel_failures_are_transport_io_errors_without_apdu_data() {
        fun failing(e: Exception) = IsoDepApduTransport(object : ApduChannel {
            override fun transceive(apdu: ByteArray): ByteArray = throw e
        })
        try {
            failing(CardIoException("short response")).transceive(byteArrayOf(0x00, 0xB2.toByte(), 0x01, 0x0C, 0x00))
            fail("an I/O error is not an answer")
        } catch (e: CardTransportException.Io) {
            assertTrue(e.reason, e.reason.contains("short response"))
            assertTrue(e.reason, !e.reason.contains("B2"))
        }
        try {
            failing(TagLostException("Tag was lost.")).transceive(byteArrayOf(0x00))
            fail("a lost tag has no answer")
        } catch (_: CardTransportException.CardRemoved) {
            // expected
        }
        try {
            failing(IOException("Transceive failed")).transceive(byteArrayOf(0x00))
            fail("an I/O error is not an answer")
        } catch (_: CardTransportException.Io) {
            // expected
        }
    }

    // ---- Printers -----------------------------------------------------------------------

    @Test
    fun printer_statuses_map_to_the_sdk_s() {
        val expected = mapOf(
            PrintStatus.PRINTED to PrinterStatus.OK,
            PrintStatus.OUT_OF_PAPER to PrinterStatus.OUT_OF_PAPER,
            PrintStatus.OVERHEATED to PrinterStatus.OVERHEATED,
            PrintStatus.COVER_OPEN to PrinterStatus.COVER_OPEN,
            PrintStatus.NO_PRINTER to PrinterStatus.NO_PRINTER,
            PrintStatus.FAILED to PrinterStatus.NO_PRINTER,
            PrintStatus.NO_PERMISSION to PrinterStatus.BUSY,
        )
        assertEquals(PrintStatus.values().toSet(), expected.keys)
        for ((app, sdk) in expected) assertEquals("$app", sdk, EscPosReceiptPrinter.statusOf(app))
    }

    @Test
    fun sunmi_printer_through_the_sdk_trait() {
        val ok = FakeWoyou(1)
        assertEquals(PrinterStatus.OK, EscPosReceiptPrinter(SunmiPrinter().also { it.attach(ok) }).print(job))
        assertArrayEquals(escpos, ok.received.toByteArray())
        val states = mapOf(
            4 to PrinterStatus.OUT_OF_PAPER, 5 to PrinterStatus.OVERHEATED, 6 to PrinterStatus.COVER_OPEN,
            505 to PrinterStatus.NO_PRINTER, 3 to PrinterStatus.NO_PRINTER,
        )
        for ((code, status) in states) {
            val service = FakeWoyou(code)
            assertEquals("state $code", status, EscPosReceiptPrinter(SunmiPrinter().also { it.attach(service) }).print(job))
            assertEquals(0, service.received.size())
        }
        assertEquals(PrinterStatus.NO_PRINTER, EscPosReceiptPrinter(SunmiPrinter()).print(job))
    }

    /** An ESC/POS printer on a Bluetooth socket: answers `DLE EOT n` from [status], records the rest. */
    private class SppPrinterEnd(
        private val fromApp: InputStream,
        private val toApp: OutputStream,
        private val status: Map<Int, Int>,
    ) : Thread("spp-printer") {
        val printed = ByteArrayOutputStream()

        init {
            isDaemon = true
        }

        override fun run() {
            try {
                val pending = ArrayDeque<Int>()
                while (true) {
                    val b = fromApp.read()
                    if (b < 0) return
                    pending.addLast(b)
                    while (pending.isNotEmpty()) {
                        if (pending.first() != 0x10) {
                            printed.write(pending.removeFirst())
                            continue
                        }
                        if (pending.size < 3) break
                        val (dle, eot, n) = pending.take(3)
                        if (dle == 0x10 && eot == 0x04) {
                            repeat(3) { pending.removeFirst() }
                            status[n]?.let { toApp.write(it); toApp.flush() }
                        } else {
                            printed.write(pending.removeFirst())
                        }
                    }
                }
            } catch (_: IOException) {
                // The app closed the socket.
            }
        }
    }

    private fun spp(status: Map<Int, Int>): Pair<PrinterStatus, ByteArray> {
        val adapter = context.getSystemService(BluetoothManager::class.java).adapter
        shadowOf(adapter).setEnabled(true)
        val socket = Shadow.newInstanceOf(BluetoothSocket::class.java)
        val end = SppPrinterEnd(shadowOf(socket).outputStreamSink, shadowOf(socket).inputStreamFeeder, status)
        end.start()
        val printer = BluetoothSppPrinter(adapter, "00:11:22:33:44:55", { socket }, statusTimeoutMs = 300)
        val result = EscPosReceiptPrinter(printer).print(job)
        end.join(2_000)
        return result to end.printed.toByteArray()
    }

    @Test(timeout = 30_000)
    fun bluetooth_spp_printer_through_the_sdk_trait() {
        val (ok, printed) = spp(mapOf(2 to 0x12, 3 to 0x12, 4 to 0x12))
        assertEquals(PrinterStatus.OK, ok)
        assertArrayEquals(escpos, printed)
        assertEquals(PrinterStatus.OUT_OF_PAPER, spp(mapOf(2 to 0x12, 3 to 0x12, 4 to 0x72)).first)
        assertEquals(PrinterStatus.COVER_OPEN, spp(mapOf(2 to 0x16)).first)
        assertEquals(PrinterStatus.OVERHEATED, spp(mapOf(2 to 0x12, 3 to 0x52, 4 to 0x12)).first)
        val off = BluetoothSppPrinter(
            context.getSystemService(BluetoothManager::class.java).adapter, "00:11:22:33:44:55",
            { throw IOException("read failed, socket might closed") },
        )
        assertEquals(PrinterStatus.NO_PRINTER, EscPosReceiptPrinter(off).print(job))
    }

    @Test
    fun usb_printer_through_the_sdk_trait_picked_at_print_time() {
        val usb = context.getSystemService(UsbManager::class.java)
        val shadowUsb: PermissionRecordingUsbManager = Shadow.extract(usb)
        // The selector's order: the built-in printer (not bound here), then USB.
        val printer = EscPosReceiptPrinter(PrinterSelector(listOf(SunmiPrinter(), UsbPrinter(context, usb))))
        assertEquals(PrinterStatus.NO_PRINTER, printer.print(job))

        val device = FakeUsbPrinterConnection.device()
        shadowUsb.addOrUpdateUsbDevice(device, false)
        assertEquals("permission asked: try again shortly", PrinterStatus.BUSY, printer.print(job))
        assertEquals(1, shadowUsb.requested.size)
        shadowUsb.addOrUpdateUsbDevice(device, true)
        assertEquals(PrinterStatus.OK, printer.print(job))
        assertArrayEquals(escpos, FakeUsbPrinterConnection.printed.toByteArray())
        FakeUsbPrinterConnection.portStatus = 0x38
        assertEquals(PrinterStatus.OUT_OF_PAPER, printer.print(job))
        FakeUsbPrinterConnection.portStatus = 0x18
        FakeUsbPrinterConnection.broken = true
        assertEquals(PrinterStatus.NO_PRINTER, printer.print(job))
    }

    // ---- BLE mPOS reader ----------------------------------------------------------------

    /** A GATT link whose far end is the testkit's simulated reader (writes go to it). */
    private class SimulatedLink(override val maxChunk: Int) : ReaderChannel {
        @Volatile
        var reader: SimulatedReader? = null
        val chunkSizes: MutableList<Int> = Collections.synchronizedList(mutableListOf())
        val incoming = MutableSharedFlow<ByteArray>(extraBufferCapacity = 64)
        @Volatile
        var closed = false

        override suspend fun write(chunk: ByteArray) {
            chunkSizes += chunk.size
            reader?.write(chunk)
        }

        override val notifications: Flow<ByteArray> = incoming
        override fun close() {
            closed = true
        }
    }

    @Test
    fun ble_bridge_talks_to_a_simulated_reader_in_mtu_sized_chunks() {
        val link = SimulatedLink(maxChunk = 20) // ATT MTU 23
        val bridge = BleMposBridge(link, scope)
        val sim = SimulatedReader(SimCardProfile.Visa, bridge.reader.chunkSender(), 0u)
        link.reader = sim
        try {
            assertEquals("SIM-RDR 1.4.2", bridge.reader.firmwareVersion())
            bridge.reader.displayText("12.34")
            assertTrue(bridge.reader.waitForCard(3_000u))
            val selectPpse = byteArrayOf(0x00, 0xA4.toByte(), 0x04, 0x00, 0x0E) + "2PAY.SYS.DDF01".toByteArray() + byteArrayOf(0x00)
            val fci = bridge.transport().transceive(selectPpse)
            assertTrue(fci.size > 2)
            assertEquals(0x90, fci[fci.size - 2].toInt() and 0xFF)
            assertEquals(0x00, fci[fci.size - 1].toInt())
            assertTrue(link.chunkSizes.isNotEmpty())
            assertTrue("${link.chunkSizes}", link.chunkSizes.all { it in 1..20 })
        } finally {
            sim.stop()
            sim.close()
            bridge.close()
        }
        assertTrue(link.closed)
    }

    @Test
    fun gatt_notifications_are_pumped_in_order_and_the_mtu_sets_the_chunk_size() = runBlocking {
        shadowOf(RuntimeEnvironment.getApplication()).grantPermissions(*BlePermissions.required().toTypedArray())
        val adapter = context.getSystemService(BluetoothManager::class.java).adapter
        shadowOf(adapter).setEnabled(true)
        val device = adapter.getRemoteDevice("AA:BB:CC:DD:EE:03")
        val profile = ReaderProfile(
            service = UUID.fromString("0000fff0-0000-1000-8000-00805f9b34fb"),
            write = UUID.fromString("0000fff2-0000-1000-8000-00805f9b34fb"),
            notify = UUID.fromString("0000fff1-0000-1000-8000-00805f9b34fb"),
        )
        val service = BluetoothGattService(profile.service, BluetoothGattService.SERVICE_TYPE_PRIMARY)
        val notifyChar = BluetoothGattCharacteristic(
            profile.notify, BluetoothGattCharacteristic.PROPERTY_NOTIFY, BluetoothGattCharacteristic.PERMISSION_READ,
        )
        notifyChar.addDescriptor(
            BluetoothGattDescriptor(UUID.fromString("00002902-0000-1000-8000-00805f9b34fb"), BluetoothGattDescriptor.PERMISSION_WRITE),
        )
        service.addCharacteristic(
            BluetoothGattCharacteristic(
                profile.write, BluetoothGattCharacteristic.PROPERTY_WRITE, BluetoothGattCharacteristic.PERMISSION_WRITE,
            ),
        )
        service.addCharacteristic(notifyChar)
        val transport = BleReaderTransport(context, adapter, profile, desiredMtu = 185, opTimeoutMs = 5_000)
        val connecting = async(start = CoroutineStart.UNDISPATCHED) { transport.connect(device) }
        val gatt: BluetoothGatt = shadowOf(device).bluetoothGatts.single()
        val fake = shadowOf(gatt)
        fake.addDiscoverableService(service)
        fake.allowCharacteristicNotification(notifyChar)
        fake.gattCallback.onConnectionStateChange(gatt, BluetoothGatt.GATT_SUCCESS, BluetoothProfile.STATE_CONNECTED)
        yield()
        fake.gattCallback.onMtuChanged(gatt, 185, BluetoothGatt.GATT_SUCCESS)
        val channel = connecting.await()
        assertEquals(182, channel.maxChunk)

        val got: MutableList<ByteArray> = Collections.synchronizedList(mutableListOf())
        val pump = BleMposBridge.pump(scope, channel.notifications) { got += it; true }
        val bridge = BleMposBridge(channel, scope)
        Thread.sleep(200) // both collectors subscribed
        val frames = (1..5).map { i -> byteArrayOf(0x02, i.toByte(), 0x03) }
        for (f in frames) fake.gattCallback.onCharacteristicChanged(gatt, notifyChar, f)
        val end = System.currentTimeMillis() + 5_000
        while (got.size < frames.size && System.currentTimeMillis() < end) Thread.sleep(10)
        assertEquals(frames.map { it.toList() }, got.map { it.toList() })
        assertTrue("the reader's sender accepts chunks", bridge.reader.chunkSender().push(byteArrayOf(0x00)))
        pump.cancel()
        bridge.close()
        assertTrue(fake.isClosed)
    }

    // ---- PIN dialog ---------------------------------------------------------------------

    /** Asks for a PIN on a worker thread (as the SDK does) while the main looper runs the dialog. */
    private fun asking(pins: DialogPinEntry): CompletableFuture<String?> {
        val answer = CompletableFuture<String?>()
        Thread { answer.complete(pins.askDigits("476173******0010", 1234u)) }.start()
        val end = System.currentTimeMillis() + 5_000
        while (ShadowAlertDialog.getLatestAlertDialog()?.isShowing != true && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        return answer
    }

    private fun settled(answer: CompletableFuture<String?>): String? {
        val end = System.currentTimeMillis() + 5_000
        while (!answer.isDone && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        return answer.get(1, TimeUnit.SECONDS)
    }

    @Test(timeout = 30_000)
    fun pin_dialog_typed_digits_reach_the_sdk_side() {
        val controller = Robolectric.buildActivity(Activity::class.java).setup()
        val answer = asking(DialogPinEntry({ controller.get() }))
        val dialog = ShadowAlertDialog.getLatestAlertDialog()
        (shadowOf(dialog).view as EditText).setText("2468")
        dialog.getButton(DialogInterface.BUTTON_POSITIVE).performClick()
        assertEquals("2468", settled(answer))
    }

    @Test(timeout = 30_000)
    fun pin_dialog_gone_with_its_activity_cancels_at_once() {
        val controller = Robolectric.buildActivity(Activity::class.java).setup()
        // A 60 s timeout: the answer must come from the activity going away, not from the timeout.
        val answer = asking(DialogPinEntry({ controller.get() }, timeoutMs = 60_000))
        assertTrue(ShadowAlertDialog.getLatestAlertDialog().isShowing)
        controller.pause().stop().destroy()
        assertNull(settled(answer))
        assertFalse(ShadowAlertDialog.getLatestAlertDialog().isShowing)
    }

    @Test(timeout = 30_000)
    fun pin_dialog_dismissed_without_a_button_cancels_and_no_dialog_on_a_destroyed_activity() {
        val controller = Robolectric.buildActivity(Activity::class.java).setup()
        val answer = asking(DialogPinEntry({ controller.get() }, timeoutMs = 60_000))
        ShadowAlertDialog.getLatestAlertDialog().dismiss()
        assertNull(settled(answer))
        controller.pause().stop().destroy()
        val started = System.currentTimeMillis()
        assertNull(DialogPinEntry({ controller.get() }, timeoutMs = 60_000).askDigits("476173******0010", 100u))
        assertTrue(System.currentTimeMillis() - started < 5_000)
    }
}
