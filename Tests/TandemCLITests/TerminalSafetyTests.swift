import Foundation
@testable import TandemCLI
import TandemTestSupport
import Testing

/// Nothing read from a store or a server reaches a terminal as a control character: it is
/// shown escaped, as git shows odd path names; `--json` stays exact.
@Suite("Terminal safety")
struct TerminalSafetyTests {
    @Test(arguments: [
        ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
        ("x\r\u{1B}[2K\u{1B}[1A", #"x\015\033[2K\033[1A"#),
        ("a\\b\u{07}", #"a\\b\007"#),
        ("c1\u{9B}", #"c1\302\233"#),
        ("rtl\u{202E}", #"rtl\342\200\256"#),
        ("two\nlines\tand a tab", #"two\012lines\011and a tab"#),
    ])
    func controlCharacters_areShownEscaped(_ input: String, _ shown: String) {
        #expect(terminalSafe(input) == shown)
        #expect(!terminalSafe(input).unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }

    @Test func freeText_keepsItsLineBreaks_butNoOtherControl() {
        #expect(terminalSafe("line one\nline\ttwo", keepingLineBreaks: true) == "line one\nline\ttwo")
        #expect(terminalSafe("one\n\u{1B}[1Aup", keepingLineBreaks: true) == #"one\n\033[1Aup"#.replacingOccurrences(of: #"\n"#, with: "\n"))
    }

    @Test func aJournalTextWithEscapes_printsEscaped_andExactInJSON() async throws {
        let home = try TemporaryDirectory()
        let path = home.path("home")
        #expect(try await TandemExecutable.run(["init", "--name", "Sam", "--role", "patient"], home: path).status == 0)
        let hostile = "fine\u{1B}[2J\u{1B}[1;1Hall clear"
        let added = try await TandemExecutable.run(["journal", "add", "--mood", "3", "--craving", "2", "--text", hostile], home: path)
        #expect(added.status == 0)
        let id = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = try await TandemExecutable.run(["journal", "show", id], home: path)
        #expect(!shown.stdout.contains("\u{1B}"))
        #expect(shown.stdout.contains(#"fine\033[2J\033[1;1Hall clear"#))
        let json = try await TandemExecutable.run(["journal", "show", id, "--json"], home: path)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let texts = decoded?["text"] as? [[String: Any]]
        #expect(texts?.first?["text"] as? String == hostile)
    }

    @Test func adminCommands_refuseAStoreThatDoesNotExist_andCreateNothing() async throws {
        let dir = try TemporaryDirectory()
        let missing = dir.path("no-such.sqlite")
        for command in [["admin", "devices"], ["admin", "members"], ["admin", "invites"], ["admin", "invite", "--role", "patient", "--name", "Sam"]] {
            let result = try await TandemExecutable.run(command + ["--db", missing])
            #expect(result.status != 0)
            #expect(result.stderr.contains("No server store at"), "\(command): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: missing))
        }
    }
}
