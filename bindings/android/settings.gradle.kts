// Standalone settings so the module can be built on its own (`gradle :assembleRelease`);
// inside an app's project, include this directory as a module instead.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "smartpos-sdk-android"
