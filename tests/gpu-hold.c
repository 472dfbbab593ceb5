/*
 * gpu-hold.c — hold some memory of one GPU for a while, through the CUDA
 * driver API, for tests/gpu-real.sh: it plays a colleague's process (run
 * outside ts) and a job (run under ts) on a machine with a real NVIDIA GPU.
 *
 *   gpu-hold MIB [SECONDS]
 *
 * It opens the first device CUDA lets it see (so CUDA_VISIBLE_DEVICES, as ts
 * sets it, chooses the card), allocates MIB MiB there, prints one line
 *   holding MIB MiB on GPU-<uuid> (pid PID)
 * and then waits SECONDS (default: until it is killed). The driver's
 * libcuda.so.1 is loaded at run time (dlopen), so building it needs no CUDA
 * toolkit: `cc -o gpu-hold gpu-hold.c -ldl`. Without a driver, or when a
 * call fails, it says which and why on stderr and exits 1; a bad argument
 * exits 2.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int CUresult;   /* 0: CUDA_SUCCESS */
typedef int CUdevice;
typedef void* CUcontext;
typedef unsigned long long CUdeviceptr;
typedef struct {
    unsigned char bytes[16];
} CUuuid;

static void* lib;

/* A driver function, or exit 1 saying which is missing. */
static void* need(const char* name) {
    void* f = dlsym(lib, name);
    if (!f) {
        fprintf(stderr, "gpu-hold: libcuda.so.1 has no %s\n", name);
        exit(1);
    }
    return f;
}

/* Exit 1 if a driver call failed, with the driver's word for why. */
static void check(CUresult r, const char* what) {
    if (r == 0) return;
    const char* text = NULL;
    CUresult (*err_string)(CUresult, const char**) = (CUresult(*)(CUresult, const char**))dlsym(lib, "cuGetErrorString");
    if (!err_string || err_string(r, &text) != 0 || !text) text = "unknown error";
    fprintf(stderr, "gpu-hold: %s failed: error %d (%s)\n", what, r, text);
    exit(1);
}

/* A decimal number from 0 to max, or exit 2. */
static unsigned long number(const char* s, unsigned long max, const char* what) {
    char* end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "gpu-hold: %s must be a number from 0 to %lu, not '%s'\n", what, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gpu-hold MIB [SECONDS]\n");
        return 2;
    }
    unsigned long mib = number(argv[1], 1UL << 24, "MIB");
    unsigned long seconds = argc == 3 ? number(argv[2], 86400, "SECONDS") : 0;

    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "gpu-hold: cannot load the NVIDIA driver's libcuda.so.1: %s\n", dlerror());
        return 1;
    }
    CUresult (*cu_init)(unsigned) = (CUresult(*)(unsigned))need("cuInit");
    CUresult (*device_get)(CUdevice*, int) = (CUresult(*)(CUdevice*, int))need("cuDeviceGet");
    CUresult (*ctx_create)(CUcontext*, unsigned, CUdevice) =
        (CUresult(*)(CUcontext*, unsigned, CUdevice))need("cuCtxCreate_v2");
    CUresult (*mem_alloc)(CUdeviceptr*, size_t) = (CUresult(*)(CUdeviceptr*, size_t))need("cuMemAlloc_v2");
    CUresult (*memset8)(CUdeviceptr, unsigned char, size_t) =
        (CUresult(*)(CUdeviceptr, unsigned char, size_t))need("cuMemsetD8_v2");
    CUresult (*get_uuid)(CUuuid*, CUdevice) = (CUresult(*)(CUuuid*, CUdevice))dlsym(lib, "cuDeviceGetUuid");

    check(cu_init(0), "cuInit");
    CUdevice dev;
    check(device_get(&dev, 0), "cuDeviceGet(0) (is a GPU visible? CUDA_VISIBLE_DEVICES chooses)");
    CUcontext ctx;
    check(ctx_create(&ctx, 0, dev), "cuCtxCreate");
    CUdeviceptr p = 0;
    if (mib > 0) {
        check(mem_alloc(&p, (size_t)mib << 20), "cuMemAlloc");
        check(memset8(p, 0, (size_t)mib << 20), "cuMemsetD8");   /* touched: counted as used */
    }
    char uuid[64] = "GPU-?";
    CUuuid u;
    if (get_uuid && get_uuid(&u, dev) == 0) {
        const unsigned char* b = u.bytes;
        snprintf(uuid, sizeof uuid,
                 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                 b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    }
    printf("holding %lu MiB on %s (pid %d)\n", mib, uuid, (int)getpid());
    fflush(stdout);
    if (seconds > 0) {
        sleep((unsigned)seconds);
        return 0;
    }
    for (;;) pause();
}
