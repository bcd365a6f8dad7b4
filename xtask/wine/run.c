/*
 * The cargo runner for the Windows tests under wine: `run.exe PROGRAM [ARGS...]` runs its
 * command line, waits, and exits with the program's exit code.
 *
 * wine could run the test programs itself, but then they would be the first Windows process
 * of their tree, with no Windows parent; on Windows cargo is their parent, and tests check
 * `getppid()`. Going through this program also makes merged doctests (edition 2024) run each
 * doctest in a process of its own, as they do on the host: rustdoc tells the merged binary
 * where it is through RUSTDOC_DOCTEST_BIN_PATH only when it runs the binary itself, not
 * through a runner, so this program sets it for a binary named rust_out.exe (the name rustdoc
 * gives doctest binaries).
 *
 * The test program is not put in a job object (which would end whatever it leaves behind):
 * wine 8.0's server crashes when a process of a nested job is killed, and the daemonic
 * children of `procs` join a job of their own. `cargo xtask cross` stops the wine server at
 * the end of the run instead, which ends every process left.
 *
 * `cargo xtask cross` builds it with mingw. It is never used on real Windows.
 */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

/* The part of a command line after its first word (the program's own name). */
static WCHAR *after_first_word(WCHAR *line)
{
    if (*line == L'"') {
        line++;
        while (*line && *line != L'"')
            line++;
        if (*line)
            line++;
    } else {
        while (*line && *line != L' ' && *line != L'\t')
            line++;
    }
    while (*line == L' ' || *line == L'\t')
        line++;
    return line;
}

/* Copies the first word of `line` (without quotes) into `word`, of `size` characters. */
static void first_word(const WCHAR *line, WCHAR *word, size_t size)
{
    WCHAR end = L' ';
    size_t n = 0;
    if (*line == L'"') {
        end = L'"';
        line++;
    }
    while (*line && *line != end && !(end == L' ' && *line == L'\t') && n + 1 < size)
        word[n++] = *line++;
    word[n] = 0;
}

int main(void)
{
    WCHAR *command = after_first_word(GetCommandLineW());
    WCHAR program[MAX_PATH * 4];
    WCHAR full[MAX_PATH * 4];
    const WCHAR *name;
    STARTUPINFOW startup;
    PROCESS_INFORMATION info;
    DWORD code = 1;

    if (!*command) {
        fprintf(stderr, "usage: run.exe PROGRAM [ARGS...]\n");
        return 2;
    }
    first_word(command, program, sizeof program / sizeof *program);
    name = wcsrchr(program, L'\\');
    if (!name || (wcsrchr(program, L'/') && wcsrchr(program, L'/') > name))
        name = wcsrchr(program, L'/');
    name = name ? name + 1 : program;
    if (_wcsicmp(name, L"rust_out.exe") == 0 &&
        GetFullPathNameW(program, sizeof full / sizeof *full, full, NULL) > 0)
        SetEnvironmentVariableW(L"RUSTDOC_DOCTEST_BIN_PATH", full);

    /* The program shares our standard handles, as it would share cargo's. */
    ZeroMemory(&startup, sizeof startup);
    startup.cb = sizeof startup;
    startup.dwFlags = STARTF_USESTDHANDLES;
    startup.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    startup.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    startup.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    SetHandleInformation(startup.hStdInput, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    SetHandleInformation(startup.hStdOutput, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    SetHandleInformation(startup.hStdError, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);

    if (!CreateProcessW(NULL, command, NULL, NULL, TRUE, 0, NULL, NULL, &startup, &info)) {
        fprintf(stderr, "run.exe: cannot start %ls: error %lu\n", program, GetLastError());
        return 127;
    }
    CloseHandle(info.hThread);
    WaitForSingleObject(info.hProcess, INFINITE);
    GetExitCodeProcess(info.hProcess, &code);
    return (int)code;
}
