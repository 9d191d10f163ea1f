/*
 * stand-in-hsm: a test-support PKCS#11 module that makes a software token behave like a
 * network HSM. It loads a real module (SoftHSM2) and forwards every call to it, adding a delay
 * to C_Sign (and optionally to C_Login and C_FindObjects) and optionally failing the Nth C_Sign
 * of the process with CKR_DEVICE_ERROR. Used by the tests and scripts/bench-sessions.sh only;
 * never shipped or installed.
 *
 * Settings (environment, read at C_GetFunctionList):
 *   STANDIN_MODULE         the real module (default: SoftHSM2's usual path)
 *   STANDIN_SIGN_DELAY_US  microseconds added to each C_Sign that produces a signature
 *   STANDIN_LOGIN_DELAY_US microseconds added to each C_Login
 *   STANDIN_FIND_DELAY_US  microseconds added to each C_FindObjects
 *   STANDIN_FAIL_SIGN_AT   N >= 1: the Nth C_Sign call fails with CKR_DEVICE_ERROR
 *   STANDIN_MAX_SESSIONS   N >= 1: C_GetTokenInfo reports ulMaxSessionCount N and the sessions
 *                          open, and C_OpenSession fails with CKR_SESSION_COUNT when N are open
 *   STANDIN_REMOVABLE      1: C_GetSlotInfo reports a removable device (as a card reader does)
 *
 * The delay is a sleep, not work: like a remote HSM, many sessions wait at the same time.
 *
 * Build: gcc -shared -fPIC -O2 -I/usr/include/p11-kit-1 -o stand-in-hsm.so stand-in-hsm.c -ldl
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST real;   /* the real module's functions */
static CK_FUNCTION_LIST ours;   /* the same, with the wrapped ones replaced */
static int loaded;
static long sign_delay_us, login_delay_us, find_delay_us, fail_sign_at;
static long max_sessions, removable;
static atomic_long sign_calls, open_sessions;

static long env_long(const char *name)
{
    const char *v = getenv(name);
    return v ? strtol(v, NULL, 10) : 0;
}

static void pause_us(long us)
{
    if (us <= 0)
        return;
    struct timespec t = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&t, &t) != 0) {
    }
}

static CK_RV wrap_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                       CK_ULONG_PTR sig_len)
{
    long n = atomic_fetch_add(&sign_calls, 1) + 1;
    if (fail_sign_at > 0 && n == fail_sign_at) {
        /* End the operation the way a device fault would: it is gone. */
        CK_BYTE buf[1024];
        CK_ULONG l = sizeof buf;
        real.C_Sign(s, data, len, buf, &l);
        return CKR_DEVICE_ERROR;
    }
    if (sig != NULL)
        pause_us(sign_delay_us);
    return real.C_Sign(s, data, len, sig, sig_len);
}

static CK_RV wrap_login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    pause_us(login_delay_us);
    return real.C_Login(s, u, pin, len);
}

static CK_RV wrap_find(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n)
{
    pause_us(find_delay_us);
    return real.C_FindObjects(s, o, max, n);
}

static CK_RV wrap_open(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                       CK_SESSION_HANDLE_PTR session)
{
    if (max_sessions > 0 && atomic_fetch_add(&open_sessions, 1) >= max_sessions) {
        atomic_fetch_sub(&open_sessions, 1);
        return CKR_SESSION_COUNT;
    }
    CK_RV rv = real.C_OpenSession(slot, flags, app, notify, session);
    if (rv != CKR_OK && max_sessions > 0)
        atomic_fetch_sub(&open_sessions, 1);
    return rv;
}

static CK_RV wrap_close(CK_SESSION_HANDLE s)
{
    CK_RV rv = real.C_CloseSession(s);
    if (rv == CKR_OK && max_sessions > 0)
        atomic_fetch_sub(&open_sessions, 1);
    return rv;
}

static CK_RV wrap_close_all(CK_SLOT_ID slot)
{
    CK_RV rv = real.C_CloseAllSessions(slot);
    if (rv == CKR_OK)
        atomic_store(&open_sessions, 0);
    return rv;
}

static CK_RV wrap_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv = real.C_GetTokenInfo(slot, info);
    if (rv == CKR_OK && max_sessions > 0) {
        info->ulMaxSessionCount = (CK_ULONG)max_sessions;
        info->ulSessionCount = (CK_ULONG)atomic_load(&open_sessions);
    }
    return rv;
}

static CK_RV wrap_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv = real.C_GetSlotInfo(slot, info);
    if (rv == CKR_OK && removable)
        info->flags |= CKF_REMOVABLE_DEVICE;
    return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    if (!loaded) {
        const char *path = getenv("STANDIN_MODULE");
        if (path == NULL)
            path = "/usr/lib/softhsm/libsofthsm2.so";
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) {
            fprintf(stderr, "stand-in-hsm: cannot load %s: %s\n", path, dlerror());
            return CKR_GENERAL_ERROR;
        }
        CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
        CK_FUNCTION_LIST_PTR fl = NULL;
        if (get == NULL || get(&fl) != CKR_OK || fl == NULL) {
            fprintf(stderr, "stand-in-hsm: %s has no usable C_GetFunctionList\n", path);
            return CKR_GENERAL_ERROR;
        }
        real = *fl;
        ours = *fl;
        ours.C_Sign = wrap_sign;
        ours.C_Login = wrap_login;
        ours.C_FindObjects = wrap_find;
        ours.C_OpenSession = wrap_open;
        ours.C_CloseSession = wrap_close;
        ours.C_CloseAllSessions = wrap_close_all;
        ours.C_GetTokenInfo = wrap_token_info;
        ours.C_GetSlotInfo = wrap_slot_info;
        sign_delay_us = env_long("STANDIN_SIGN_DELAY_US");
        login_delay_us = env_long("STANDIN_LOGIN_DELAY_US");
        find_delay_us = env_long("STANDIN_FIND_DELAY_US");
        fail_sign_at = env_long("STANDIN_FAIL_SIGN_AT");
        max_sessions = env_long("STANDIN_MAX_SESSIONS");
        removable = env_long("STANDIN_REMOVABLE");
        loaded = 1;
    }
    *list = &ours;
    return CKR_OK;
}
