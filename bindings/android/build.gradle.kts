// SmartPOS SDK as an Android library (AAR): the same Kotlin as bindings/kotlin (the generated
// uniffi bindings plus the hand-written layer) and the native libraries for arm64-v8a,
// armeabi-v7a and x86_64 built by scripts/build-android.sh (cargo-ndk, 16 KB pages).
// Run scripts/build-android.sh first: it fills src/main/jniLibs and build/generated/uniffi.

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.21"
}

android {
    namespace = "com.smartpos.sdk"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDirs(
                "../kotlin/src/main/kotlin",
                "build/generated/uniffi",
            )
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // Keep the .so files page-aligned and uncompressed in the APK (16 KB page devices).
            useLegacyPackaging = false
        }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // JNA's AAR carries its own libjnidispatch.so for every Android ABI. `implementation`: the
    // bindings use it at run time only; no JNA type is in the public API.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    // `api`: the public API is coroutines (suspend commands, `Terminal.events(): Flow`), so apps
    // compile against it. docs/android.md, "Dependencies and their scopes".
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
