/* main() of the static crashkeep executable.
 *
 * An isolated interpreter: no site, no sys.path entries, no PYTHON* environment
 * variables, UTF-8 mode, no warnings about missing prefix directories. Python
 * code comes only from inside the binary: Cython-compiled crashkeep modules
 * (builtin, registered in gen/modules.c) and frozen stdlib/CLI modules
 * (gen/frozen.c; most of them zlib-compressed). The frozen _crashkeep_finder
 * lets dotted builtin names (crashkeep.cli.main, ...) be imported as package
 * members and loads the compressed frozen modules.
 */
#include <Python.h>
#include <time.h>
#include <unistd.h>

extern const struct _frozen ck_frozen_table[];
extern const unsigned char *ck_zstore;
extern const Py_ssize_t ck_zstore_size;
extern int ck_append_inittab(void);

/* _crashkeep_zstore.data: a read-only memoryview of the zlib-compressed
 * frozen modules (gen/frozen.c), read by the frozen _crashkeep_finder. */
static struct PyModuleDef zstore_def = {
    PyModuleDef_HEAD_INIT, "_crashkeep_zstore", NULL, -1, NULL,
};

static PyObject *init_zstore(void)
{
    PyObject *m = PyModule_Create(&zstore_def);
    PyObject *mv;

    if (m == NULL)
        return NULL;
    mv = PyMemoryView_FromMemory((char *)ck_zstore, ck_zstore_size, PyBUF_READ);
    if (mv == NULL || PyModule_AddObject(m, "data", mv) < 0) {
        Py_XDECREF(mv);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

static int fail(PyStatus st)
{
    if (PyStatus_IsExit(st))
        return st.exitcode;
    Py_ExitStatusException(st);   /* prints the message, exits 1 */
    return 1;
}

int main(int argc, char **argv)
{
    PyStatus st;
    PyPreConfig pre;
    PyConfig config;
    PyObject *mod, *res;
    int rc = 0;

    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st))
        return fail(st);

    if (ck_append_inittab() < 0 ||
            PyImport_AppendInittab("_crashkeep_zstore", init_zstore) < 0) {
        fprintf(stderr, "crashkeep: cannot register builtin modules\n");
        return 70;
    }
    PyImport_FrozenModules = ck_frozen_table;

    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.write_bytecode = 0;
    config.user_site_directory = 0;
    config.pathconfig_warnings = 0;
    config.use_frozen_modules = 1;
    config.install_signal_handlers = 1;
    config.parse_argv = 0;
    config.safe_path = 1;
    config.module_search_paths_set = 1;   /* and left empty: no host stdlib */
    /* No getrandom() at start-up: early in boot the kernel's CRNG is not
     * ready and the first read makes it generate entropy first (about 1 s
     * under QEMU TCG, seconds on a quiet board). String hashing only needs
     * a seed that differs between runs, not a secret one. */
    config.use_hash_seed = 1;
    config.hash_seed = ((unsigned long)getpid() * 2654435761UL ^ (unsigned long)time(NULL))
                       & 0xffffffffUL;
    st = PyConfig_SetBytesArgv(&config, argc, argv);
    if (PyStatus_Exception(st))
        goto config_fail;
    st = PyConfig_SetString(&config, &config.program_name, L"crashkeep");
    if (PyStatus_Exception(st))
        goto config_fail;
    st = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(st))
        goto config_fail;
    PyConfig_Clear(&config);

    mod = PyImport_ImportModule("_crashkeep_finder");
    if (mod == NULL)
        goto py_fail;
    Py_DECREF(mod);
    mod = PyImport_ImportModule("crashkeep.cli.main");
    if (mod == NULL)
        goto py_fail;
    res = PyObject_CallMethod(mod, "main", NULL);
    Py_DECREF(mod);
    if (res == NULL)
        goto py_fail;
    if (res == Py_None)
        rc = 0;
    else if (PyLong_Check(res))
        rc = (int)PyLong_AsLong(res);
    else
        rc = 1;
    Py_DECREF(res);
    if (Py_FinalizeEx() < 0)
        rc = 120;
    return rc;

py_fail:
    /* SystemExit: PyErr_Print exits with its code; anything else: traceback. */
    PyErr_Print();
    Py_FinalizeEx();
    return 1;

config_fail:
    PyConfig_Clear(&config);
    return fail(st);
}
