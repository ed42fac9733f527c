public import Foundation
import TandemProcess

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
            let process = try Subprocess(script.path, arguments, output: .pipe, error: .sameAsOutput)
            let output = process.standardOutput!.readDataToEndOfFile()
            let status = process.waitUntilExit().status
            return ScriptRun(status: status, output: String(decoding: output, as: UTF8.self))
        }
    }
}
