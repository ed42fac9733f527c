import ArgumentParser
import Foundation

/// `--text` or `--text-file` (`-` reads standard input).
struct TextOptions: ParsableArguments {
    @Option(help: "The free text.")
    var text: String?

    @Option(help: ArgumentHelp("Read the free text from a file ('-' for standard input).", valueName: "file"))
    var textFile: String?

    func validate() throws {
        if text != nil && textFile != nil { throw ValidationError("Give --text or --text-file, not both.") }
    }

    /// The text given, if any; with `stdinWhenPiped`, a pipe or file on standard input counts.
    func read(stdinWhenPiped: Bool = false) throws -> String? {
        if let text { return text }
        if let textFile {
            if textFile == "-" { return readStandardInput() }
            guard let data = FileManager.default.contents(atPath: textFile) else { throw CLIError.unreadableTextFile(textFile) }
            return String(decoding: data, as: UTF8.self)
        }
        guard stdinWhenPiped, Self.standardInputIsPipeOrFile else { return nil }
        let text = readStandardInput()
        return text.isEmpty ? nil : text
    }

    private func readStandardInput() -> String {
        String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }

    static var standardInputIsPipeOrFile: Bool {
        var info = stat()
        guard fstat(STDIN_FILENO, &info) == 0 else { return false }
        let type = info.st_mode & S_IFMT
        return type == S_IFIFO || type == S_IFREG
    }
}
