<#
.SYNOPSIS
    Install ccproxy on Windows: the one-file proxy between Claude Code / OpenAI clients and LLM providers.

.DESCRIPTION
    Picks the release's zipapp for this CPU and the Python found (ccproxy-windows-<arch>-py3<minor>.pyz:
    its wheels are compiled for one minor), verifies it against the release's SHA256SUMS, puts it
    and a ccproxy.cmd shim (which runs it with `py -3.<minor>` or python.exe) in
    %LOCALAPPDATA%\ccproxy (or $env:CCPROXY_INSTALL_DIR), adds that folder to the user PATH,
    writes a starter config when there is none, and upgrades in place when run again.
    Needs Python 3.11+.

        irm https://github.com/ccproxy/ccproxy/releases/latest/download/install.ps1 | iex
        .\install.ps1 -Version 0.2.0
        .\install.ps1 -FromFile .\ccproxy.pyz

    Environment: CCPROXY_INSTALL_DIR, CCPROXY_RELEASE_URL (where the release assets are),
    CCPROXY_DOWNLOAD_URL (download this one file instead; verified by URL.sha256 when published),
    CCPROXY_REPO (owner/name for releases), CCPROXY_VERSION (as -Version, for `| iex`).

.PARAMETER Version
    Install this release (default: the latest).
.PARAMETER FromFile
    Install a local ccproxy.pyz instead of downloading one.
.PARAMETER NoInit
    Do not write a starter config.
#>
[CmdletBinding()]
param(
    [string]$Version = $env:CCPROXY_VERSION,
    [string]$FromFile = '',
    [switch]$NoInit
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
# The Python minors each release is built for (.github/workflows/release.yml's matrix).
$ReleaseMinors = @('11', '12', '13')

function Say([string]$Text) { Write-Host "ccproxy install: $Text" }
function Fail([string]$Text) { throw "ccproxy install: error: $Text" }

function Test-Python([string[]]$Command) {
    # True when the command runs a Python 3.11 or newer.
    $exe = $Command[0]
    $rest = @($Command | Select-Object -Skip 1)
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { return $false }
    try {
        & $exe @rest -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>$null | Out-Null
        return ($LASTEXITCODE -eq 0)
    } catch {
        return $false
    }
}

function Find-Python {
    foreach ($candidate in @(@('py', '-3'), @('python3'), @('python'))) {
        if (Test-Python $candidate) {
            if ($candidate[0] -eq 'py') { return , $candidate }
            # python.exe by its full path: the Microsoft Store alias on PATH may change later.
            $path = (Get-Command $candidate[0]).Source
            return , @($path)
        }
    }
    return $null
}

function Get-Sha256([string]$Path) {
    return (Get-FileHash -Algorithm SHA256 -LiteralPath $Path).Hash.ToLowerInvariant()
}

function Confirm-Checksum([string]$File, [string]$ChecksumFile, [string]$Asset = '') {
    if ($Asset) {
        # SHA256SUMS: "<hex>  <name>" (or "<hex> *<name>") per line; take the asset's.
        $line = Get-Content -LiteralPath $ChecksumFile | Where-Object {
            $parts = $_ -split '\s+', 2
            $parts.Count -eq 2 -and ($parts[1] -replace '^\*', '') -eq $Asset
        } | Select-Object -First 1
        if (-not $line) { Fail "SHA256SUMS has no line for $Asset; nothing was installed" }
        $expected = ($line -split '\s+')[0].ToLowerInvariant()
    } else {
        $expected = ((Get-Content -LiteralPath $ChecksumFile -Raw).Trim() -split '\s+')[0].ToLowerInvariant()
    }
    $actual = Get-Sha256 $File
    if ($expected -ne $actual) { Fail "SHA-256 mismatch: expected $expected, got $actual; nothing was installed" }
    Say "checksum verified (sha256 $actual)"
}

$python = Find-Python
if ($null -eq $python) {
    Write-Host 'ccproxy install: error: ccproxy needs Python 3.11 or newer, and none was found.' -ForegroundColor Red
    Write-Host 'Install it, for example:'
    Write-Host '    winget install --id Python.Python.3.12 -e'
    Write-Host '    (or from https://www.python.org/downloads/windows/, with the "py launcher" option)'
    Fail 'Python 3.11+ not found'  # throw, not exit: under `irm | iex` exit would close the window
}
$pyExe = $python[0]
$pyArgs = @($python | Select-Object -Skip 1)

$dir = if ($env:CCPROXY_INSTALL_DIR) { $env:CCPROXY_INSTALL_DIR } else { Join-Path $env:LOCALAPPDATA 'ccproxy' }
New-Item -ItemType Directory -Force -Path $dir | Out-Null
$target = Join-Path $dir 'ccproxy.pyz'
$shim = Join-Path $dir 'ccproxy.cmd'
# A private folder on the same volume: the final move is a rename, and the file inside already has
# its final name, so shiv's first-run extraction (named after the file) is reused afterwards.
$work = Join-Path $dir ('.install-' + [guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Force -Path $work | Out-Null
$tmp = Join-Path $work 'ccproxy.pyz'

try {
    if ($FromFile) {
        if (-not (Test-Path -LiteralPath $FromFile -PathType Leaf)) { Fail "no such file: $FromFile" }
        Copy-Item -LiteralPath $FromFile -Destination $tmp
        if (Test-Path -LiteralPath "$FromFile.sha256" -PathType Leaf) { Confirm-Checksum $tmp "$FromFile.sha256" }
        Say "installing $FromFile"
    } elseif ($env:CCPROXY_DOWNLOAD_URL) {
        $url = $env:CCPROXY_DOWNLOAD_URL
        Say "downloading $url"
        $ProgressPreference = 'SilentlyContinue'  # the progress bar makes Invoke-WebRequest very slow
        try {
            Invoke-WebRequest -Uri $url -OutFile $tmp -UseBasicParsing
        } catch {
            Fail "download failed: $url ($($_.Exception.Message))"
        }
        $sum = Join-Path $work 'ccproxy.pyz.sha256'
        $published = $true
        try { Invoke-WebRequest -Uri "$url.sha256" -OutFile $sum -UseBasicParsing } catch { $published = $false }
        if ($published) { Confirm-Checksum $tmp $sum } else { Say "no checksum published at $url.sha256; not verified" }
    } else {
        $repo = if ($env:CCPROXY_REPO) { $env:CCPROXY_REPO } else { 'ccproxy/ccproxy' }
        if ($env:CCPROXY_RELEASE_URL) {
            $base = $env:CCPROXY_RELEASE_URL.TrimEnd('/')
        } elseif ($Version) {
            $base = "https://github.com/$repo/releases/download/v$($Version.TrimStart('v'))"
        } else {
            $base = "https://github.com/$repo/releases/latest/download"
        }
        $arch = switch ($env:PROCESSOR_ARCHITECTURE) { 'AMD64' { 'x86_64' } default { '' } }
        if (-not $arch) { Fail "no release build for the $($env:PROCESSOR_ARCHITECTURE) CPU; install from a checkout: pip install ." }
        $minor = (& $pyExe @pyArgs -c 'import sys; print(sys.version_info[1])' | Out-String).Trim()
        if ($ReleaseMinors -notcontains $minor) {
            Fail "no release build for Python 3.$minor (builds: 3.$($ReleaseMinors -join ', 3.')); install one of those"
        }
        $asset = "ccproxy-windows-$arch-py3$minor.pyz"
        $url = "$base/$asset"
        Say "downloading $url"
        $ProgressPreference = 'SilentlyContinue'  # the progress bar makes Invoke-WebRequest very slow
        try {
            Invoke-WebRequest -Uri $url -OutFile $tmp -UseBasicParsing
        } catch {
            Fail "download failed: $url ($($_.Exception.Message))"
        }
        $sum = Join-Path $work 'SHA256SUMS'
        try {
            Invoke-WebRequest -Uri "$base/SHA256SUMS" -OutFile $sum -UseBasicParsing
        } catch {
            Fail "no SHA256SUMS at $base; refusing an unverified download (-FromFile installs a file you checked)"
        }
        Confirm-Checksum $tmp $sum $asset
    }

    $newVersion = (& $pyExe @pyArgs $tmp version 2>&1 | Out-String).Trim()
    if ($LASTEXITCODE -ne 0) { Fail "the downloaded file does not run: $newVersion" }

    $oldVersion = $null
    if (Test-Path -LiteralPath $target) {
        $oldVersion = (& $pyExe @pyArgs $target version 2>$null | Out-String).Trim()
    }
    Move-Item -LiteralPath $tmp -Destination $target -Force

    # `py -3.<minor>`: the zipapp's compiled wheels are for the minor it was picked for.
    $pyMinor = (& $pyExe @pyArgs -c 'import sys; print(sys.version_info[1])' | Out-String).Trim()
    $launcher = if ($pyExe -eq 'py') { "py -3.$pyMinor" } else { '"' + $pyExe + '"' }
    $shimText = "@echo off`r`n$launcher `"%~dp0ccproxy.pyz`" %*`r`nexit /b %ERRORLEVEL%`r`n"
    Set-Content -LiteralPath $shim -Value $shimText -NoNewline -Encoding ASCII

    if ($null -eq $oldVersion) {
        Say "installed $target`: $newVersion"
    } elseif ($oldVersion -eq $newVersion) {
        Say "reinstalled $target`: $newVersion"
    } else {
        Say "upgraded $target`: $oldVersion -> $newVersion"
    }
} finally {
    Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
}

# The user PATH, for new terminals; and this session's, so `ccproxy` works right away.
$userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
$entries = @(if ($userPath) { $userPath -split ';' | Where-Object { $_ } })
if ($entries -notcontains $dir) {
    [Environment]::SetEnvironmentVariable('Path', (@($entries) + $dir) -join ';', 'User')
    Say "added $dir to your user PATH (new terminals will have it)"
}
if ((($env:Path -split ';') -notcontains $dir)) { $env:Path = "$env:Path;$dir" }

if (-not $NoInit) {
    $out = ($null | & $shim init --scope user 2>&1 | Out-String).Trim()
    if ($LASTEXITCODE -eq 0) {
        Write-Host $out
    } elseif ($out -match 'already exists') {
        Say 'keeping the existing config'
    } else {
        Say "could not write a starter config: $out"
    }
}
Say 'done: run `ccproxy code` (Claude Code through the proxy) or `ccproxy start`'
