<#
.SYNOPSIS
    Build Stratavore's Windows installer: dist\Stratavore-Setup-<version>.exe.

.DESCRIPTION
    A thin wrapper: it creates a virtual environment in build\venv (once) for the tests,
    installs Stratavore and its test dependencies into it, then hands over to
    "installer\build.py --target windows", the same build the Linux CI makes under Wine: it
    runs the tests, fetches the embeddable CPython and the win_amd64 wheels that
    installer\windows-lock.toml pins (once, into %LOCALAPPDATA%\stratavore-build or
    $env:STRATAVORE_BUILD_CACHE, each checked by its SHA256), freezes the app with that
    Python and PyInstaller, runs the frozen app's selftest, compiles the NSIS installer, signs
    (with -SignCert) and prints the SHA256 of what it made.

    Needs Python 3.11+ (the py launcher or python on the PATH; it only runs the tests and
    build.py) and NSIS 3 (makensis; e.g. winget install NSIS.NSIS). Signing needs signtool
    from the Windows SDK on the PATH; the PFX password, if any, is read from
    $env:STRATAVORE_SIGN_PASSWORD.

.EXAMPLE
    .\build.ps1
    .\build.ps1 -Version 0.2.0 -SkipTests
    .\build.ps1 -SignCert C:\keys\stratavore.pfx
#>
Param(
    [string]$Version,
    [switch]$SkipTests,
    [string]$SignCert
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$Root = $PSScriptRoot
$Venv = Join-Path $Root "build\venv"  # build\ is ignored by git, and only for builds
$Python = Join-Path $Venv "Scripts\python.exe"

function Invoke-Checked {
    # Native commands do not stop the script on failure by themselves.
    param([string]$What, [scriptblock]$Command)
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit status $LASTEXITCODE)" }
}

if (-not (Test-Path $Python)) {
    Write-Host "==> creating $Venv"
    if (Get-Command py -ErrorAction SilentlyContinue) {
        Invoke-Checked "creating the venv" { py -3 -m venv $Venv }
    } else {
        Invoke-Checked "creating the venv" { python -m venv $Venv }
    }
}

Write-Host "==> installing Stratavore with its desktop, build and test dependencies"
Invoke-Checked "pip" {
    & $Python -m pip install --disable-pip-version-check --progress-bar off -e "$Root[desktop,build,test]"
}

$BuildArgs = @("--target", "windows")
if ($Version) { $BuildArgs += @("--version", $Version) }
if ($SkipTests) { $BuildArgs += "--skip-tests" }
if ($SignCert) { $BuildArgs += @("--sign-cert", (Resolve-Path $SignCert).Path) }

Push-Location $Root
try {
    Invoke-Checked "installer\build.py" { & $Python (Join-Path $Root "installer\build.py") @BuildArgs }
} finally {
    Pop-Location
}

# build.py printed them; once more, as Windows computes them, for the release notes.
Get-ChildItem (Join-Path $Root "dist\Stratavore-Setup-*.exe") |
    Sort-Object LastWriteTime -Descending | Select-Object -First 1 |
    ForEach-Object { Get-FileHash -Algorithm SHA256 $_.FullName } |
    Format-List Algorithm, Hash, Path
