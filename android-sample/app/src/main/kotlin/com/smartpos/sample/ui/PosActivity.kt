package com.smartpos.sample.ui

import android.app.Activity
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.lifecycle.ViewModelStore
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * The cashier's single activity, plain Views built in code (no Compose, no XML: see [Texts]).
 * It renders [PosViewModel.state] and forwards taps; all logic is in the ViewModel and the SDK.
 *
 * The ViewModel survives configuration changes in a [ViewModelStore] passed through
 * `onRetainNonConfigurationInstance` (the plain-Activity equivalent of `ComponentActivity`).
 */
class PosActivity : Activity() {
    private lateinit var store: ViewModelStore
    private lateinit var vm: PosViewModel
    private lateinit var texts: Texts
    private lateinit var root: LinearLayout
    private val uiScope = CoroutineScope(SupervisorJob() + Dispatchers.Main.immediate)

    /** The ViewModel (tests drive it directly). */
    val viewModel: PosViewModel get() = vm

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        texts = Texts(resources.configuration.locales[0])
        @Suppress("DEPRECATION")
        store = (lastNonConfigurationInstance as? ViewModelStore) ?: ViewModelStore()
        vm = (store[KEY] as? PosViewModel) ?: (application as ViewModelSource).newViewModel().also { store.put(KEY, it) }
        root = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        setContentView(ScrollView(this).apply { addView(root) })
        uiScope.launch { vm.state.collect { render(it) } }
        // Bluetooth runtime permissions (Android 12+) before the printer or reader needs them;
        // once per launch, not again on a configuration change.
        val missing = (application as ViewModelSource).runtimePermissions()
        if (savedInstanceState == null && missing.isNotEmpty()) requestPermissions(missing.toTypedArray(), REQUEST_PERMISSIONS)
    }

    @Deprecated("Plain Activity API, kept for the ViewModelStore")
    override fun onRetainNonConfigurationInstance(): Any = store

    override fun onDestroy() {
        uiScope.cancel()
        if (!isChangingConfigurations) store.clear()
        super.onDestroy()
    }

    private fun render(s: PosUiState) {
        root.removeAllViews()
        s.status?.let { label(it) }
        when (s.screen) {
            Screen.LOGIN -> loginScreen()
            Screen.CHANGE_PASSWORD -> changePasswordScreen()
            Screen.AMOUNT -> amountScreen()
            Screen.PRESENT_CARD -> {
                label(texts.presentCard)
                button(texts.cancel) { vm.cancelCardWait() }
            }
            Screen.PROCESSING -> label(texts.processing)
            Screen.RESULT -> resultScreen(s)
            Screen.TRANSACTIONS -> transactionsScreen(s)
            Screen.REFUND -> refundScreen(s)
            Screen.SETTLEMENT -> s.settlement?.let {
                label("${texts.settle} #${it.batch}: ${it.debitCount} / ${it.debitAmount}, ${it.creditCount} / ${it.creditAmount}, balanced=${it.balanced}")
            }
            Screen.PENDING -> pendingScreen(s)
            Screen.ERROR -> {
                s.error?.let { label(it) }
                if (s.canRetry) button(texts.retry) { vm.retry() }
                if (s.operator == null) button(texts.login) { vm.backToLogin() }
            }
        }
        s.diagnosis?.let { diagnosis(it) }
        if (s.screen != Screen.LOGIN) navigation()
    }

    private fun loginScreen() {
        label(texts.login)
        val op = input(texts.operator, InputType.TYPE_CLASS_NUMBER)
        val pwd = input(texts.password, InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD)
        button(texts.login) { vm.login(op.text.toString(), pwd.text.toString()) }
    }

    private fun changePasswordScreen() {
        label(texts.mustChangePassword)
        val old = input(texts.password, InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD)
        val new = input(texts.newPassword, InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD)
        button(texts.login) { vm.changePassword(old.text.toString(), new.text.toString()) }
    }

    private fun amountScreen() {
        val amount = input(texts.amount, InputType.TYPE_CLASS_NUMBER)
        button(texts.pay) { amount.text.toString().toLongOrNull()?.let { vm.sale(it) } }
    }

    private fun resultScreen(s: PosUiState) {
        val r = s.lastResult ?: return
        label(if (r.approved) texts.approved else texts.notApproved)
        if (r.replayed) label(texts.replayed)
        // Where the money stands is the SDK's diagnosis below (reversed, or still reversing).
        if (r.declinedByCard) label(texts.declinedByCard)
        label("${r.kind} ${r.reference} ${r.amount} ${r.responseCode ?: ""}")
        // How the card was read, and for a chip its application and the card's certificate.
        listOfNotNull(r.entryMode, r.aid?.let { "AID $it" }, r.tc?.let { "TC $it" })
            .takeIf { it.isNotEmpty() }?.let { label(it.joinToString("  ")) }
        r.receiptPreview?.let { label(it).apply { typeface = android.graphics.Typeface.MONOSPACE } }
        button(texts.print) { vm.printReceipt() }
        button(texts.reprint) { vm.reprintLast() }
        s.printStatus?.let {
            label(if (it == PrintOutcome.NO_PERMISSION) texts.printerNoPermission else "${texts.printer}: ${it.name.lowercase()}")
        }
    }

    private fun transactionsScreen(s: PosUiState) {
        label(texts.transactions)
        for (t in s.transactions) {
            val row = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
            row.addView(TextView(this).apply { text = "${t.reference} ${t.kind} ${t.state} ${t.amount}" })
            row.addView(Button(this).apply { text = texts.void; setOnClickListener { vm.void(t.reference) } })
            row.addView(Button(this).apply { text = texts.refund; setOnClickListener { vm.quoteRefund(t.reference) } })
            root.addView(row)
        }
    }

    private fun refundScreen(s: PosUiState) {
        val q = s.refundQuote ?: return
        label("${texts.refund} ${q.original.reference}: ${texts.refundable} ${q.refundable}")
        q.denials.forEach { label(it.localized(texts.language).first) }
        val amount = input(texts.amount, InputType.TYPE_CLASS_NUMBER)
        // The SDK's policy says whether a supervisor must approve; its password is checked there.
        val pwd = if (q.needsSupervisor) {
            label(texts.supervisor)
            input(texts.password, InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD)
        } else {
            null
        }
        button(texts.refund) {
            amount.text.toString().toLongOrNull()?.let {
                vm.refund(it, pwd?.let { p -> SupervisorApproval(SUPERVISOR, p.text.toString()) })
            }
        }
    }

    private fun pendingScreen(s: PosUiState) {
        label(texts.pending)
        s.pending.forEach { label("${it.kind} ${it.reference} ${it.reasonCode ?: ""} ×${it.attempts}") }
        button(texts.recover) { vm.recover() }
    }

    private fun diagnosis(d: DiagnosisView) {
        val (title, explanation, steps) = d.localized(texts.language)
        label(title)
        label(explanation)
        label(texts.nextSteps)
        steps.forEachIndexed { i, step -> label("${i + 1}. $step") }
    }

    private fun navigation() {
        button(texts.pay) { vm.newSale() }
        button(texts.transactions) { vm.loadTransactions() }
        button(texts.settle) { vm.settle() }
        button(texts.pending) { vm.loadPending() }
    }

    private fun label(text: String): TextView = TextView(this).also { it.text = text; root.addView(it) }

    private fun input(hint: String, type: Int): EditText =
        EditText(this).also { it.hint = hint; it.inputType = type; root.addView(it) }

    private fun button(text: String, onClick: () -> Unit): Button =
        Button(this).also { b ->
            b.text = text
            b.setOnClickListener(View.OnClickListener { onClick() })
            root.addView(b)
        }

    /** Implemented by the Application: creates the activity's ViewModel (with the SDK wired in). */
    fun interface ViewModelSource {
        /** A new ViewModel. */
        fun newViewModel(): PosViewModel

        /** Runtime permissions the app's hardware needs and does not have (asked at start). */
        fun runtimePermissions(): List<String> = emptyList()
    }

    private companion object {
        const val KEY = "pos"
        const val REQUEST_PERMISSIONS = 1

        /** The SDK's supervisor operator. */
        const val SUPERVISOR = "00"
    }
}
