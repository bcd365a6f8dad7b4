/*
 * A stand-in for Windows' bcryptprimitives.dll, for running the Windows tests under wine.
 *
 * Rust's standard library gets its random numbers from ProcessPrng in bcryptprimitives.dll
 * (Windows 10 and later); wine 8.0 ships no such DLL, so a Rust program does not even start.
 * This DLL exports ProcessPrng on top of RtlGenRandom (advapi32's SystemFunction036), which
 * wine has. `cargo xtask cross` builds it with mingw and puts it in the wine prefix's
 * system32. It is never used on real Windows.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Fills `data` with `len` random bytes; FALSE only if RtlGenRandom fails. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
