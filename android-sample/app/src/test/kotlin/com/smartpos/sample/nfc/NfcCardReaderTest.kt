package com.smartpos.sample.nfc

import android.app.Activity
import android.content.pm.PackageManager
import android.nfc.NfcAdapter
import android.nfc.Tag
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import android.os.Bundle
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadows.ShadowIsoDep
import org.robolectric.shadows.ShadowNfcAdapter
import org.robolectric.util.ReflectionHelpers
import org.robolectric.util.ReflectionHelpers.ClassParameter

/** ShadowIsoDep that can lose the card, as a real controller does when the card leaves the field. */
@Implements(IsoDep::class)
class LosableIsoDep : ShadowIsoDep() {
    @Implementation
    override fun transceive(data: ByteArray): ByteArray {
        if (lost) throw TagLostException("Tag was lost.")
        return super.transceive(data)
    }

    companion object {
        /** When true, the next transceive throws TagLostException. */
        @JvmStatic
        var lost = false
    }
}

/**
 * ShadowNfcAdapter as strict as AOSP's: reader mode calls for a destroyed activity throw
 * `IllegalStateException("activity is already destroyed")`; remembers the reader-mode activity.
 */
@Implements(NfcAdapter::class)
class StrictNfcAdapter : ShadowNfcAdapter() {
    @Implementation
    override fun enableReaderMode(activity: Activity, callback: NfcAdapter.ReaderCallback, flags: Int, extras: Bundle?) {
        check(!activity.isDestroyed) { "activity is already destroyed" }
        readerModeActivity = activity
        super.enableReaderMode(activity, callback, flags, extras)
    }

    @Implementation
    override fun disableReaderMode(activity: Activity) {
        check(!activity.isDestroyed) { "activity is already destroyed" }
        readerModeActivity = null
        super.disableReaderMode(activity)
    }

    companion object {
        @JvmStatic
        var readerModeActivity: Activity? = null
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [LosableIsoDep::class, StrictNfcAdapter::class])
class NfcCardReaderTest {
    private lateinit var activity: Activity

    @Before
    fun setUp() {
        ShadowNfcAdapter.setNfcHardwareExists(true)
        LosableIsoDep.lost = false
        activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        shadowOf(activity.packageManager).setSystemFeature(PackageManager.FEATURE_NFC, true)
    }

    @After
    fun tearDown() {
        ShadowNfcAdapter.reset()
        StrictNfcAdapter.readerModeActivity = null
    }

    private fun isoDepTag(): Tag = ReflectionHelpers.callStaticMethod(
        Tag::class.java,
        "createMockTag",
        ClassParameter.from(ByteArray::class.java, byteArrayOf(0x04, 0x11, 0x22, 0x33)),
        // TagTechnology.ISO_DEP == 3 (hidden constant of android.nfc.tech.TagTechnology).
        ClassParameter.from(IntArray::class.java, intArrayOf(3)),
        ClassParameter.from(Array<Bundle>::class.java, arrayOf(Bundle())),
        // API 34 added a cookie argument.
        ClassParameter.from(java.lang.Long.TYPE, 0L),
    )

    private fun adapter(enabled: Boolean): NfcAdapter {
        val a = NfcAdapter.getDefaultAdapter(activity)
        shadowOf(a).setEnabled(enabled)
        return a
    }

    private fun tap(reader: NfcCardReader, adapter: NfcAdapter): IsoDepChannel = runBlocking {
        val card = async(start = CoroutineStart.UNDISPATCHED) { reader.awaitCard(activity) }
        val shadow = shadowOf(adapter)
        assertTrue("reader mode on while waiting", shadow.isInReaderMode)
        assertEquals(NfcState.WAITING_FOR_CARD, reader.state.value)
        shadow.dispatchTagDiscovered(isoDepTag())
        card.await()
    }

    @Test
    fun apdus_are_relayed_to_the_card_after_a_tap() {
        val adapter = adapter(enabled = true)
        val reader = NfcCardReader(adapter, transceiveTimeoutMs = 4_000)
        val channel = tap(reader, adapter)
        assertEquals(NfcState.CARD_PRESENT, reader.state.value)
        // Turning reader mode off now would restart discovery and drop the card.
        assertTrue("reader mode stays on while the card is in use", shadowOf(adapter).isInReaderMode)
        assertTrue(channel.isoDep.isConnected)
        assertEquals(4_000, channel.isoDep.timeout)

        val shadowIso = shadowOf(channel.isoDep)
        val ppse = "2PAY.SYS.DDF01".toByteArray()
        val select = byteArrayOf(0x00, 0xA4.toByte(), 0x04, 0x00, ppse.size.toByte()) + ppse + byteArrayOf(0x00)
        shadowIso.setNextTransceiveResponse(byteArrayOf(0x6F, 0x00, 0x90.toByte(), 0x00))
        assertArrayEquals(byteArrayOf(0x6F, 0x00, 0x90.toByte(), 0x00), channel.transceive(select))
        shadowIso.setTransceiveResponse(byteArrayOf(0x6A, 0x82.toByte()))
        assertArrayEquals(byteArrayOf(0x6A, 0x82.toByte()), channel.transceive(byteArrayOf(0x00, 0xB2.toByte(), 0x01, 0x0C, 0x00)))
        channel.close()
        assertFalse(channel.isoDep.isConnected)
        reader.finished()
        assertFalse("reader mode off once the session is over", shadowOf(adapter).isInReaderMode)
        assertEquals(NfcState.IDLE, reader.state.value)
    }

    @Test
    fun reader_mode_uses_nfc_a_b_skip_ndef_and_presence_delay() {
        assertEquals(
            NfcAdapter.FLAG_READER_NFC_A or NfcAdapter.FLAG_READER_NFC_B or NfcAdapter.FLAG_READER_SKIP_NDEF_CHECK,
            NfcCardReader.READER_FLAGS,
        )
        assertEquals(0, NfcCardReader.READER_FLAGS and NfcAdapter.FLAG_READER_NFC_F)
    }

    @Test
    fun tag_lost_means_card_removed() {
        val adapter = adapter(enabled = true)
        val reader = NfcCardReader(adapter)
        val channel = tap(reader, adapter)
        shadowOf(channel.isoDep).setTransceiveResponse(byteArrayOf(0x90.toByte(), 0x00))
        channel.transceive(byteArrayOf(0x00, 0xA4.toByte(), 0x04, 0x00, 0x00))
        LosableIsoDep.lost = true
        try {
            channel.transceive(byteArrayOf(0x80.toByte(), 0xAE.toByte(), 0x80.toByte(), 0x00, 0x00))
            fail("a lost tag must not give a response")
        } catch (e: CardRemovedException) {
            assertTrue(e.cause is TagLostException)
        }
        assertEquals(NfcState.CARD_REMOVED, reader.state.value)
    }

    @Test
    fun a_response_without_status_word_is_an_io_error() {
        val adapter = adapter(enabled = true)
        val channel = tap(NfcCardReader(adapter), adapter)
        shadowOf(channel.isoDep).setNextTransceiveResponse(byteArrayOf(0x90.toByte()))
        try {
            channel.transceive(byteArrayOf(0x00, 0xA4.toByte(), 0x04, 0x00, 0x00))
            fail("one byte is not an APDU response")
        } catch (e: CardIoException) {
            assertEquals("short response", e.message)
        }
    }

    @Test
    fun nfc_switched_off_is_a_clear_state() {
        val reader = NfcCardReader(adapter(enabled = false))
        assertEquals(NfcState.DISABLED, reader.availability())
        try {
            runBlocking { reader.awaitCard(activity) }
            fail("must not wait for a card with NFC off")
        } catch (e: NfcUnavailableException) {
            assertEquals(NfcState.DISABLED, e.state)
        }
        assertEquals(NfcState.DISABLED, reader.state.value)
    }

    @Test
    fun device_without_nfc_is_a_clear_state() {
        ShadowNfcAdapter.setNfcHardwareExists(false)
        shadowOf(activity.packageManager).setSystemFeature(PackageManager.FEATURE_NFC, false)
        val reader = NfcCardReader(NfcAdapter.getDefaultAdapter(activity))
        assertEquals(NfcState.UNAVAILABLE, reader.state.value)
    }

    @Test
    fun cancelling_the_wait_turns_reader_mode_off() = runBlocking {
        val adapter = adapter(enabled = true)
        val reader = NfcCardReader(adapter)
        val wait = async(start = CoroutineStart.UNDISPATCHED) { reader.awaitCard(activity) }
        assertTrue(shadowOf(adapter).isInReaderMode)
        wait.cancel()
        yield()
        assertFalse(shadowOf(adapter).isInReaderMode)
        assertEquals(NfcState.IDLE, reader.state.value)
    }

    @Test
    fun a_wait_outliving_its_activity_neither_crashes_nor_touches_the_destroyed_activity() = runBlocking {
        val adapter = adapter(enabled = true)
        val reader = NfcCardReader(adapter)
        val controller = Robolectric.buildActivity(Activity::class.java).setup()
        val wait = async(start = CoroutineStart.UNDISPATCHED) { reader.awaitCard(controller.get()) }
        assertTrue(shadowOf(adapter).isInReaderMode)
        controller.pause().stop().destroy()
        // Cancelling now must not ask the NfcAdapter about the destroyed activity (it throws).
        wait.cancel()
        yield()
        assertTrue(wait.isCancelled)
        assertEquals(NfcState.IDLE, reader.state.value)
    }

    @Test
    fun a_recreated_activity_takes_over_the_wait_and_the_tap_still_works() = runBlocking {
        val adapter = adapter(enabled = true)
        val reader = NfcCardReader(adapter)
        val app = activity.application
        app.registerActivityLifecycleCallbacks(reader)
        try {
            val first = Robolectric.buildActivity(Activity::class.java).setup()
            val card = async(start = CoroutineStart.UNDISPATCHED) { reader.awaitCard() }
            assertSame("the resumed activity", first.get(), StrictNfcAdapter.readerModeActivity)
            first.pause().stop().destroy()
            val second = Robolectric.buildActivity(Activity::class.java).setup()
            assertSame("reader mode moved to the new activity", second.get(), StrictNfcAdapter.readerModeActivity)
            shadowOf(adapter).dispatchTagDiscovered(isoDepTag())
            val channel = card.await()
            assertTrue(channel.isoDep.isConnected)
            channel.close()
            reader.finished()
            assertNull(StrictNfcAdapter.readerModeActivity)
        } finally {
            app.unregisterActivityLifecycleCallbacks(reader)
        }
    }

    @Test
    fun the_card_wait_times_out_or_is_cancelled_as_no_card() = runBlocking {
        val adapter = adapter(enabled = true)
        val slow = NfcCardReader(adapter, cardWaitMs = 200)
        val timedOut = runCatching { slow.awaitCard(activity) }.exceptionOrNull()
        assertTrue("$timedOut", timedOut is NoCardException)
        assertFalse(shadowOf(adapter).isInReaderMode)
        assertEquals(NfcState.IDLE, slow.state.value)

        val reader = NfcCardReader(adapter)
        val wait = async(start = CoroutineStart.UNDISPATCHED) { runCatching { reader.awaitCard(activity) } }
        assertTrue(reader.cancelWait())
        val cancelled = wait.await().exceptionOrNull()
        assertTrue("$cancelled", cancelled is NoCardException)
        assertFalse(shadowOf(adapter).isInReaderMode)
        assertFalse("nothing left to cancel", reader.cancelWait())
    }
}
