package com.smartpos.sample.ui

import android.Manifest
import android.app.Application
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.TextView
import com.smartpos.sample.ble.BlePermissions
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableSharedFlow
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowLooper
import java.io.IOException

/** A gateway for the activity: sales wait for a card that [card] completes (or the cashier cancels). */
class WaitingGateway : PaymentGateway {
    override val events = MutableSharedFlow<PosEvent>()

    @Volatile
    var card = CompletableDeferred<Unit>()
    val keys = mutableListOf<String>()

    /** What the next sale returns once the card came (null: a plain approval). */
    @Volatile
    var result: TxnView? = null

    override suspend fun login(operator: String, password: String) = LoginOutcome.LOGGED_IN
    override suspend fun changePassword(operator: String, oldPassword: String, newPassword: String) = Unit
    override suspend fun sale(amount: Long, idempotencyKey: String): TxnView {
        val replay = idempotencyKey in keys
        keys += idempotencyKey
        if (!replay) {
            try {
                card.await()
            } catch (e: IOException) {
                throw GatewayException("no card: ${e.message}", null, e)
            }
        }
        return result ?: TxnView("000001000001", "sale", "approved", amount, true, null, null, "00", false, null, null, replayed = replay)
    }

    override fun cancelCardWait(): Boolean = card.completeExceptionally(IOException("card wait cancelled"))
    override suspend fun refundQuote(reference: String) = throw GatewayException("unused", null)
    override suspend fun refund(reference: String, amount: Long, approval: SupervisorApproval?, idempotencyKey: String) =
        throw GatewayException("unused", null)
    override suspend fun void(reference: String, idempotencyKey: String) = throw GatewayException("unused", null)
    override suspend fun print(reference: String, customerCopy: Boolean) = PrintOutcome.NO_PERMISSION
    override suspend fun reprintLast(customerCopy: Boolean) = PrintOutcome.PRINTED
    override suspend fun settle() = SettlementView(1, true, 0, 0, 0, 0)
    override suspend fun transactions(limit: Int) = emptyList<TxnView>()
    override suspend fun pending() = emptyList<PendingView>()
    override suspend fun recover() = RecoveryView(0, 0)
}

/** The Application of these tests: a ViewModel over [WaitingGateway], Bluetooth printer set up. */
class TestPosApp : Application(), PosActivity.ViewModelSource {
    val gateway = WaitingGateway()
    override fun newViewModel() = PosViewModel(gateway, Dispatchers.IO)
    override fun runtimePermissions() = BlePermissions.missing(this, BlePermissions.connect())
}

@RunWith(RobolectricTestRunner::class)
@Config(application = TestPosApp::class)
class PosActivityTest {
    private fun texts(v: View): List<String> = when (v) {
        is TextView -> listOf(v.text.toString()) // Button is a TextView
        is ViewGroup -> (0 until v.childCount).flatMap { texts(v.getChildAt(it)) }
        else -> emptyList()
    }

    private fun click(v: View, text: String): Boolean = when (v) {
        is Button -> if (v.text.toString() == text) v.performClick() else false
        is ViewGroup -> (0 until v.childCount).any { click(v.getChildAt(it), text) }
        else -> false
    }

    private fun until(activity: PosActivity, done: (PosUiState) -> Boolean): PosUiState {
        val end = System.currentTimeMillis() + 10_000
        while (!done(activity.viewModel.state.value) && System.currentTimeMillis() < end) {
            ShadowLooper.idleMainLooper()
            Thread.sleep(5)
        }
        ShadowLooper.idleMainLooper()
        return activity.viewModel.state.value
    }

    @Test
    fun bluetooth_connect_is_asked_at_start_when_missing() {
        val controller = Robolectric.buildActivity(PosActivity::class.java).setup()
        val asked = shadowOf(controller.get()).lastRequestedPermission
        assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), asked.requestedPermissions.toList())
    }

    @Test
    fun bluetooth_connect_is_not_asked_when_granted() {
        val app = org.robolectric.RuntimeEnvironment.getApplication()
        shadowOf(app).grantPermissions(Manifest.permission.BLUETOOTH_CONNECT)
        val controller = Robolectric.buildActivity(PosActivity::class.java).setup()
        assertNull(shadowOf(controller.get()).lastRequestedPermission)
    }

    @Test
    fun the_card_wait_can_be_cancelled_and_a_replayed_result_is_labelled() {
        val activity = Robolectric.buildActivity(PosActivity::class.java).setup().get()
        val vm = activity.viewModel
        until(activity) { !it.busy }
        vm.login("01", "1357")
        until(activity) { it.screen == Screen.AMOUNT }
        vm.sale(1234)
        until(activity) { it.screen == Screen.PRESENT_CARD }
        assertTrue(click(activity.window.decorView, "Cancel"))
        val cancelled = until(activity) { it.screen == Screen.ERROR }
        assertEquals(Screen.ERROR, cancelled.screen)
        assertTrue(cancelled.error!!, cancelled.error!!.contains("cancelled"))
        assertTrue(cancelled.canRetry)
        // Retry of the same checkout: the gateway replays; the screen says it is the earlier attempt's.
        val app = activity.application as TestPosApp
        assertTrue(click(activity.window.decorView, Texts(java.util.Locale.ENGLISH).retry))
        val replayed = until(activity) { it.screen == Screen.RESULT }
        assertTrue(replayed.lastResult!!.replayed)
        assertEquals(1, app.gateway.keys.toSet().size)
        assertTrue(texts(activity.window.decorView).toString(), Texts(java.util.Locale.ENGLISH).replayed in texts(activity.window.decorView))
        // Printing without the Bluetooth permission says what to do.
        vm.printReceipt()
        until(activity) { it.printStatus != null }
        assertTrue(Texts(java.util.Locale.ENGLISH).printerNoPermission in texts(activity.window.decorView))
    }

    @Test
    fun a_chip_result_shows_how_the_card_was_read_and_a_card_decline_is_labelled() {
        val activity = Robolectric.buildActivity(PosActivity::class.java).setup().get()
        val vm = activity.viewModel
        val app = activity.application as TestPosApp
        val en = Texts(java.util.Locale.ENGLISH)
        until(activity) { !it.busy }
        vm.login("01", "1357")
        until(activity) { it.screen == Screen.AMOUNT }
        app.gateway.card.complete(Unit)
        app.gateway.result = TxnView(
            "000001000002", "sale", "approved", 1234, true, "123456789012", "654321", "00", false, null, null,
            entryMode = "chip", aid = "A000000333010101", tc = "1122334455667788",
        )
        vm.sale(1234)
        until(activity) { it.screen == Screen.RESULT }
        val shown = texts(activity.window.decorView)
        assertTrue(shown.toString(), "chip  AID A000000333010101  TC 1122334455667788" in shown)
        assertFalse(shown.toString(), en.declinedByCard in shown)

        // The card declined after the bank approved: the SDK reversed it; the screen says why.
        app.gateway.result = TxnView(
            "000001000003", "sale", "reversed", 1234, false, "123456789013", "654322", "00", false, null, null,
            entryMode = "chip", aid = "A0000000031010", declinedByCard = true,
        )
        vm.newSale()
        vm.sale(1234)
        until(activity) { it.screen == Screen.RESULT && it.lastResult?.reference == "000001000003" }
        val declined = texts(activity.window.decorView)
        assertTrue(declined.toString(), en.notApproved in declined && en.declinedByCard in declined)
        assertTrue(declined.toString(), "chip  AID A0000000031010" in declined)
    }
}
