import ArgumentParser
import Foundation

/// `--text` or `--text-file`; either as `-` reads standard input. Standard input is read
/// only when asked (as git does): in a script, a command never swallows the lines after it.
struct TextOptions: ParsableArguments {
    @Option(help: "The free text ('-' for standard input).")
    var text: String?

    @Option(help: ArgumentHelp("Read the free text from a file ('-' for standard input).", valueName: "file"))
    var textFile: String?

    func validate() throws {
        if text != nil && textFile != nil { throw ValidationError("Give --text or --text-file, not both.") }
    }

    /// The text given, if any.
    func read() throws -> String? {
        if let text { return text == "-" ? readStandardInput() : text }
        if let textFile {
            if textFile == "-" { return readStandardInput() }
            guard let data = FileManager.default.contents(atPath: textFile) else { throw CLIError.unreadableTextFile(textFile) }
            return String(decoding: data, as: UTF8.self)
        }
        return nil
    }

    private func readStandardInput() -> String {
        String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }
}
