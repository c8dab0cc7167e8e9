// SmartPOS Android sample: the app plus the SDK's Android library module (bindings/android),
// included by path so the sample always builds against the SDK in this repository.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "smartpos-android-sample"
include(":app")
include(":smartpos")
project(":smartpos").projectDir = file("../bindings/android")
