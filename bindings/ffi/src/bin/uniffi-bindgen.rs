//! The uniffi-bindgen command, built from the same uniffi version as the library, so the
//! generated Kotlin always matches the scaffolding. Run in library mode:
//! `uniffi-bindgen generate --library target/debug/libsmartpos_ffi.so --language kotlin --out-dir DIR`.
//!
//! After generating Kotlin it adds one thing to the generated file: every JNA callback of the
//! bindings (the app's card transport, PIN pad, printer, listener, secure store, ..., and
//! uniffi's future callbacks) gets a `CallbackThreadInitializer` that keeps the calling thread
//! attached to the VM after the callback returns. Without it JNA attaches the terminal's thread
//! for every callback and detaches it afterwards: a contactless sale through the JVM bindings
//! took 4.0 ms instead of 3.1-3.8 ms here (README, Performance, item 3), and a tap makes one
//! callback per APDU. JNA still
//! detaches the thread when it ends (a thread-local destructor in its native dispatch code).
//! The initializers must be set before `UniffiLib` registers the callback tables, because JNA
//! reads them when it makes a callback's native entry point, so the call goes at the top of
//! `UniffiLib`'s `init`. A generated file that does not have the expected shape fails the
//! command instead of producing bindings without it.

use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    uniffi::uniffi_bindgen_main();
    if let Some(dir) = kotlin_out_dir(&args)
        && let Err(e) = patch_dir(&dir)
    {
        eprintln!("uniffi-bindgen: {e}");
        std::process::exit(1);
    }
}

/// The `--out-dir` of a `generate ... --language kotlin` run.
fn kotlin_out_dir(args: &[String]) -> Option<PathBuf> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let generate = args.get(1).is_some_and(|a| a == "generate");
    let kotlin = value("--language").is_some_and(|l| l == "kotlin");
    (generate && kotlin)
        .then(|| value("--out-dir").map(PathBuf::from))
        .flatten()
}

/// Patches every generated Kotlin file under `dir` that defines `UniffiLib`.
fn patch_dir(dir: &Path) -> Result<(), String> {
    let mut patched = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "kt") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if !text.contains("internal object UniffiLib {") || text.contains(MARKER) {
                    continue;
                }
                let out = keep_callback_threads_attached(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                std::fs::write(&path, out).map_err(|e| format!("{}: {e}", path.display()))?;
                patched += 1;
            }
        }
    }
    if patched == 0 {
        return Err(format!("no generated UniffiLib under {}", dir.display()));
    }
    Ok(())
}

/// Name of the added function; also marks a file as patched.
const MARKER: &str = "smartposKeepCallbackThreadsAttached";

/// The generated Kotlin with the thread initializer set on every callback object before
/// `UniffiLib` registers them.
fn keep_callback_threads_attached(src: &str) -> Result<String, String> {
    let callbacks = callback_objects(src);
    if callbacks.is_empty() {
        return Err("no JNA callback objects found".to_owned());
    }
    let lib = src
        .find("internal object UniffiLib {")
        .ok_or("no UniffiLib object")?;
    let init = src[lib..]
        .find("    init {\n")
        .map(|i| lib + i + "    init {\n".len())
        .ok_or("no init block in UniffiLib")?;
    let mut out = String::with_capacity(src.len() + 2048);
    out.push_str(&src[..init]);
    out.push_str(&format!("        {MARKER}()\n"));
    out.push_str(&src[init..]);
    out.push_str(&format!(
        "\n// Added by bindings/ffi/src/bin/uniffi-bindgen.rs: threads that call back into Kotlin\n\
         // stay attached to the VM between callbacks (JNA detaches them when they end).\n\
         private fun {MARKER}() {{\n    \
         val keep = com.sun.jna.CallbackThreadInitializer(true, false)\n    \
         listOf<com.sun.jna.Callback>(\n"
    ));
    for c in &callbacks {
        out.push_str(&format!("        {c},\n"));
    }
    out.push_str(
        "    ).forEach { com.sun.jna.Native.setCallbackThreadInitializer(it, keep) }\n}\n",
    );
    Ok(out)
}

/// Kotlin expressions of the generated callback objects: `internal object X: Uniffi...Callback...`
/// at the top level, and the same nested in an `internal object uniffiCallbackInterfaceY`.
fn callback_objects(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut container: Option<&str> = None;
    for line in src.lines() {
        let nested = line.starts_with("    internal object ");
        let top = line.starts_with("internal object ");
        if !(nested || top) {
            if line.starts_with('}') {
                container = None;
            }
            continue;
        }
        if top {
            container = None;
        }
        let decl = line.trim_start().trim_start_matches("internal object ");
        let decl = decl.trim_end().trim_end_matches('{').trim_end();
        match decl.split_once(':') {
            Some((name, supertype)) => {
                let (name, supertype) = (name.trim(), supertype.trim());
                if !(supertype.starts_with("Uniffi") && supertype.contains("Callback")) {
                    continue;
                }
                match (nested, container) {
                    (true, Some(c)) => found.push(format!("{c}.{name}")),
                    (false, _) => found.push(name.to_owned()),
                    (true, None) => {}
                }
            }
            None if top && decl.starts_with("uniffiCallbackInterface") => container = Some(decl),
            None => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = "\
internal interface UniffiCallbackInterfaceFree : com.sun.jna.Callback {
}
internal object UniffiLib {
    init {
        Native.register(UniffiLib::class.java, findLibraryName(componentName = \"smartpos_ffi\"))
        uniffiCallbackInterfaceApduTransport.register(this)
    }
}
internal object uniffiRustFutureContinuationCallbackImpl: UniffiRustFutureContinuationCallback {
    override fun callback(data: Long, pollResult: Byte) {}
}
object UniffiNullRustCallStatusErrorHandler: UniffiRustCallStatusErrorHandler<InternalException> {
}
internal object uniffiCallbackInterfaceApduTransport {
    internal object `transceive`: UniffiCallbackInterfaceApduTransportMethod0 {
        override fun callback() {}
    }
    internal object uniffiFree: UniffiCallbackInterfaceFree {
    }
    internal var vtable = 1
}
internal object FfiConverterSomething: FfiConverter<Long, Long> {
}
";

    #[test]
    fn finds_every_callback_object_and_only_those() {
        assert_eq!(
            callback_objects(GENERATED),
            vec![
                "uniffiRustFutureContinuationCallbackImpl",
                "uniffiCallbackInterfaceApduTransport.`transceive`",
                "uniffiCallbackInterfaceApduTransport.uniffiFree",
            ]
        );
    }

    #[test]
    fn the_initializers_are_set_before_the_callbacks_are_registered() {
        let out = keep_callback_threads_attached(GENERATED).unwrap();
        let call = out.find(&format!("        {MARKER}()")).unwrap();
        let register = out.find("Native.register(").unwrap();
        let vtables = out
            .find("uniffiCallbackInterfaceApduTransport.register(this)")
            .unwrap();
        assert!(call < register && register < vtables, "{out}");
        assert!(out.contains("CallbackThreadInitializer(true, false)"));
        assert!(out.contains("        uniffiCallbackInterfaceApduTransport.`transceive`,\n"));
        // Everything generated is still there, in order.
        assert_eq!(
            out.replace(&format!("        {MARKER}()\n"), "")
                .find(GENERATED),
            Some(0)
        );
    }

    #[test]
    fn a_file_of_another_shape_is_refused() {
        assert!(keep_callback_threads_attached("internal object UniffiLib {\n}\n").is_err());
        let no_init = GENERATED.replace("    init {\n", "    fun x() {\n");
        assert!(keep_callback_threads_attached(&no_init).is_err());
    }

    #[test]
    fn only_kotlin_generation_is_patched() {
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            kotlin_out_dir(&args(
                "b generate --library l.so --language kotlin --out-dir /o"
            )),
            Some(PathBuf::from("/o"))
        );
        assert_eq!(
            kotlin_out_dir(&args(
                "b generate --library l.so --language swift --out-dir /o"
            )),
            None
        );
        assert_eq!(kotlin_out_dir(&args("b --help")), None);
    }
}
