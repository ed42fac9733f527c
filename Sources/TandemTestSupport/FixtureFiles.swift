public import Foundation

/// Finds and writes files under the repository's `Fixtures/`.
///
/// Set `TANDEM_REGENERATE_FIXTURES=1` to rewrite generated fixtures instead of checking them.
public enum FixtureFiles {
    public static var regenerate: Bool { ProcessInfo.processInfo.environment["TANDEM_REGENERATE_FIXTURES"] == "1" }

    /// `Fixtures/<folder>` of this checkout.
    public static func directory(_ folder: String, file: StaticString = #filePath) -> URL {
        URL(fileURLWithPath: "\(file)")
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(folder)
    }

    /// The files in `Fixtures/<folder>` ending in `.<ext>`, sorted by name.
    public static func files(_ folder: String, ext: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory(folder), includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == ext }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    public static func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    public static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    public static func write(_ bytes: [UInt8], to url: URL) throws { try Data(bytes).write(to: url) }

    public static func write(_ text: String, to url: URL) throws { try Data(text.utf8).write(to: url) }

    /// An environment variable as an integer, for case counts of property tests.
    public static func environmentInt(_ name: String) -> Int? {
        ProcessInfo.processInfo.environment[name].flatMap(Int.init)
    }
}
