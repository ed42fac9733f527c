public import Foundation

/// What a checker script printed (standard output and error together) and how it ended.
public struct ScriptRun: Sendable {
    public var status: Int32
    public var output: String

    /// The repository's `scripts/NAME`, found from this file.
    public static func script(_ name: String, file: StaticString = #filePath) -> URL {
        URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts").appendingPathComponent(name)
    }

    /// Runs `script` with `arguments` and no standard input, off the concurrency pool, and
    /// waits for it (`scripts/fhir-check`, `scripts/dashboard-check`).
    public static func run(_ script: URL, _ arguments: [String]) async throws -> ScriptRun {
        try await offThePool {
            let process = Process()
            process.executableURL = script
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return ScriptRun(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
        }
    }
}
